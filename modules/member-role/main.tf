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

  # Each role trusts only its callers, and only presenting the deployment's external id, its callers named as
  # principals. A responder deployed in every region has one role per region, more than IAM's 2,048 characters for a
  # trust policy can name: then the member role trusts the accounts of those roles, for the roles named
  # <prefix>-<region> of a listed region (one pattern per first part of the regions' names, <prefix>-eu-*), and only
  # those carrying the deployment's tag (guardduty-responder:deployment = <prefix>, which the responder's roles
  # carry); the others stay named.
  named_trust = {
    for callers, arns in { responder = var.responder_role_arns, operators = var.operator_role_arns } : callers => {
      Version                        = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { AWS = arns }
        Action    = "sts:AssumeRole"
        Condition = { StringEquals = { "sts:ExternalId" = var.external_id } }
      }]
    }
  }
  # Each responder role's region, if its name ends with "-<a listed region>".
  caller_regions = {
    for arn in var.responder_role_arns : arn => try(one([for region in var.regions : region if endswith(arn, "-${region}")]), null)
  }
  regional_callers = { for arn, region in local.caller_regions : arn => region if region != null }
  other_callers    = [for arn, region in local.caller_regions : arn if region == null]
  # One statement per deployment (the account, path and name prefix before the region), with that deployment's own
  # tag value: a role of one deployment never passes with another's tag. A role under a deeper path is not let in.
  deployments = {
    for arn, region in local.regional_callers : trimsuffix(arn, region) => {
      account = "arn:${split(":", arn)[1]}:iam::${split(":", arn)[4]}:root"
      prefix  = trimsuffix(element(split("/", arn), length(split("/", arn)) - 1), "-${region}")
      region  = region
    }...
  }
  patterned_trust = {
    Version = "2012-10-17"
    Statement = concat([for stem, roles in local.deployments : {
      Effect    = "Allow"
      Principal = { AWS = roles[0].account }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = {
          "sts:ExternalId"                                  = var.external_id
          "aws:PrincipalTag/guardduty-responder:deployment" = roles[0].prefix
        }
        ArnLike    = { "aws:PrincipalArn" = distinct([for role in roles : "${stem}${split("-", role.region)[0]}-*"]) }
        ArnNotLike = { "aws:PrincipalArn" = "${stem}*/*" }
      }
      }], length(local.other_callers) == 0 ? [] : [{
      Effect    = "Allow"
      Principal = { AWS = local.other_callers }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "sts:ExternalId" = var.external_id } }
    }])
  }
  responder_trust_by = length(jsonencode(local.named_trust.responder)) <= 2048 || length(local.regional_callers) == 0 ? "names" : "patterns"
  trust_policies = {
    responder = local.responder_trust_by == "names" ? jsonencode(local.named_trust.responder) : jsonencode(local.patterned_trust)
    operators = jsonencode(local.named_trust.operators)
  }
}

locals {
  # The roles a person's release never touches: this module's, those listed, and AWS's (the member role's own list
  # also names the responder roles, in case they live here too: one for every region would not fit this policy).
  release_protected_roles = concat(
    [for name in concat([var.role_name, local.release_role_name], var.protected_role_names) : "arn:${local.partition}:iam::${local.account_id}:role/*${name}"],
    ["arn:${local.partition}:iam::${local.account_id}:role/aws-reserved/*", "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/*", "arn:${local.partition}:iam::${local.account_id}:role/OrganizationAccountAccessRole"],
  )
}

module "estate_policy" {
  source = "../estate-policy"

  partition             = local.partition
  account_id            = local.account_id
  regions               = var.regions
  identity_actions      = var.identity_actions
  metadata_actions      = var.metadata_actions
  credential_actions    = var.credential_actions
  snapshot_lock_actions = var.snapshot_lock_actions
  # This role, the responder's roles should they live in this account too, and those the operator lists.
  protected_role_names = concat([var.role_name, local.release_role_name], [for arn in var.responder_role_arns : element(split("/", arn), length(split("/", arn)) - 1)], var.protected_role_names)
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
        # With identity_actions the role may write inline policies on roles: never on its own.
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
      # The rest containment changed (guardduty_responder.restore), on instances the responder tagged only: the
      # instance profile (passing its role to EC2 alone), the metadata options, and, when asked, service.
      {
        Sid       = "SeeTheProfileAndTheGroups"
        Effect    = "Allow"
        Action    = ["ec2:DescribeIamInstanceProfileAssociations", "autoscaling:DescribeAutoScalingInstances"]
        Resource  = "*" # Describe* actions support no resource-level permissions.
        Condition = { StringEquals = { "aws:RequestedRegion" = var.regions } }
      },
      {
        Sid      = "PutTheIsolatedInstanceBack"
        Effect   = "Allow"
        Action   = ["ec2:AssociateIamInstanceProfile", "ec2:ModifyInstanceMetadataOptions"]
        Resource = "arn:${local.partition}:ec2:*:${local.account_id}:instance/*"
        Condition = {
          Null         = { "aws:ResourceTag/guardduty-responder:finding-id" = "false" }
          StringEquals = { "aws:RequestedRegion" = var.regions }
        }
      },
      {
        Sid       = "GiveTheRoleBackToEc2Only"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = "arn:${local.partition}:iam::${local.account_id}:role/*"
        Condition = { StringEquals = { "iam:PassedToService" = "ec2.amazonaws.com" } }
      },
      {
        # Before giving a profile back, its role is read (a protected role is never given back); before removing a
        # revocation (--restore-credentials) it is read, and removed only if it is this instance's, shaped as the
        # responder writes it. IAM cannot bound the policy name, so the deletion reaches any inline policy of the
        # account's roles but the protected ones: the command's checks are what keep it to revocations.
        Sid      = "ReadTheProfileAndTheRevocation"
        Effect   = "Allow"
        Action   = ["iam:GetInstanceProfile", "iam:GetRolePolicy"]
        Resource = ["arn:${local.partition}:iam::${local.account_id}:instance-profile/*", "arn:${local.partition}:iam::${local.account_id}:role/*"]
      },
      {
        Sid      = "RemoveTheRevocation"
        Effect   = "Allow"
        Action   = ["iam:DeleteRolePolicy"]
        Resource = "arn:${local.partition}:iam::${local.account_id}:role/*"
      },
      {
        # The responder's own roles live in the administrator account, not here: this list is the member account's.
        Sid      = "NeverTheProtectedRoles"
        Effect   = "Deny"
        Action   = ["iam:DeleteRolePolicy", "iam:PassRole"]
        Resource = local.release_protected_roles
      },
      {
        Sid       = "ReturnToService"
        Effect    = "Allow"
        Action    = ["autoscaling:ExitStandby", "autoscaling:AttachInstances", "elasticloadbalancing:RegisterTargets"]
        Resource  = ["arn:${local.partition}:autoscaling:*:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/*", "arn:${local.partition}:elasticloadbalancing:*:${local.account_id}:targetgroup/*/*"]
        Condition = { StringEquals = { "aws:RequestedRegion" = var.regions } }
      },
    ]
  })
}
