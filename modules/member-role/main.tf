# The role the responder assumes in a member account. IAM is global: deploy this once per member
# account, listing every region the responder is deployed in.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # Built from the name, not read from the role, so that the policy is known before the role exists.
  role_arn = "arn:${local.partition}:iam::${local.account_id}:role${var.role_path}${var.role_name}"
  # The command line's release assumes this name: the member role's name with "-release".
  release_role_name = "${var.role_name}-release"

  # Each role trusts only its callers, and only presenting the deployment's external id: by name, as principals,
  # while that fits IAM's 2,048 characters for a trust policy. A responder deployed in every region has a role per
  # region, more than fit: then its callers' accounts are the principals, and the callers' ARNs a condition in which
  # the roles named <name>-<region> of one deployment become one pattern, <name>-??-*-? (a region's shape: two
  # letters, a hyphen, ..., a hyphen and a digit), matching only role names of that shape.
  callers = { responder = var.responder_role_arns, operators = var.operator_role_arns }
  named_trust = {
    for callers, arns in local.callers : callers => jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { AWS = arns }
        Action    = "sts:AssumeRole"
        Condition = { StringEquals = { "sts:ExternalId" = var.external_id } }
      }]
    })
  }
  regional_role = "^(arn:[^:]+:iam::[0-9]{12}:role/(?:.*/)?[\\w+=,.@-]+-)[a-z]{2,4}(?:-[a-z]+)+-[0-9]+$"
  patterned_trust = {
    for callers, arns in local.callers : callers => jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { AWS = distinct([for arn in arns : "arn:${split(":", arn)[1]}:iam::${split(":", arn)[4]}:root"]) }
        Action    = "sts:AssumeRole"
        Condition = {
          StringEquals = { "sts:ExternalId" = var.external_id }
          ArnLike      = { "aws:PrincipalArn" = distinct([for arn in arns : can(regex(local.regional_role, arn)) ? "${regex(local.regional_role, arn)[0]}??-*-?" : arn]) }
        }
      }]
    })
  }
  trust_policies = {
    for callers in keys(local.callers) : callers => length(local.named_trust[callers]) <= 2048 ? local.named_trust[callers] : local.patterned_trust[callers]
  }
}

module "estate_policy" {
  source = "../estate-policy"

  partition          = local.partition
  account_id         = local.account_id
  regions            = var.regions
  credential_actions = var.credential_actions
  # This role, and the responder's roles should they live in this account too.
  protected_role_names = concat([var.role_name, local.release_role_name], [for arn in var.responder_role_arns : element(split("/", arn), length(split("/", arn)) - 1)])
}

resource "aws_iam_role" "this" {
  name                 = var.role_name
  path                 = var.role_path
  permissions_boundary = var.permissions_boundary_arn
  description          = "Assumed by the GuardDuty responder to contain instances in this account"
  max_session_duration = 3600
  tags                 = var.tags

  # Only the responder's roles, and only presenting the deployment's external id: the guard against
  # a confused deputy that AWS recommends for roles assumed across accounts.
  assume_role_policy = local.trust_policies.responder
}

resource "aws_iam_role_policy" "this" {
  name = "responder"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(module.estate_policy.statements, module.estate_policy.guard_statements, [
      {
        # With credential_actions the role may write inline policies on roles: never on its own.
        Sid      = "NeverLoosenItsOwnPermissions"
        Effect   = "Deny"
        Action   = ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"]
        Resource = local.role_arn
      },
    ])
  })
}

# People release isolated instances with `guardduty-responder release`: through a role of their own
# that can only put network interfaces back on groups, never through the responder's member role.
resource "aws_iam_role" "release" {
  count                = length(var.operator_role_arns) == 0 ? 0 : 1
  name                 = local.release_role_name
  path                 = var.role_path
  permissions_boundary = var.permissions_boundary_arn
  description          = "Assumed by the people who release instances the GuardDuty responder isolated in this account"
  max_session_duration = 3600
  tags                 = var.tags

  assume_role_policy = local.trust_policies.operators
}

resource "aws_iam_role_policy" "release" {
  count = length(var.operator_role_arns) == 0 ? 0 : 1
  name  = "release"
  role  = aws_iam_role.release[0].id
  # IAM authorises ModifyNetworkInterfaceAttribute on the interface and on each group it is given (and the
  # instance and VPC); a resource tag condition applies to each, so the interfaces' condition has a statement of
  # its own: only interfaces the responder tagged when it isolated them
  # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
  # Before moving anything the command reads the instance and the saved groups, to refuse a group of another VPC,
  # one that no longer exists or one of the responder's own.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "SeeWhereTheyGo"
        Effect    = "Allow"
        Action    = ["ec2:DescribeInstances", "ec2:DescribeSecurityGroups"]
        Resource  = "*" # Describe* actions support no resource-level permissions.
        Condition = { StringEquals = { "aws:RequestedRegion" = var.regions } }
      },
      {
        Sid      = "PutIsolatedNetworkInterfacesBack"
        Effect   = "Allow"
        Action   = ["ec2:ModifyNetworkInterfaceAttribute"]
        Resource = "arn:${local.partition}:ec2:*:${local.account_id}:network-interface/*"
        Condition = {
          Null         = { "aws:ResourceTag/guardduty-responder:finding-id" = "false" }
          StringEquals = { "aws:RequestedRegion" = var.regions }
        }
      },
      {
        Sid       = "OntoTheirGroups"
        Effect    = "Allow"
        Action    = ["ec2:ModifyNetworkInterfaceAttribute"]
        Resource  = [for kind in ["security-group", "instance", "vpc"] : "arn:${local.partition}:ec2:*:${local.account_id}:${kind}/*"]
        Condition = { StringEquals = { "aws:RequestedRegion" = var.regions } }
      },
    ]
  })
}
