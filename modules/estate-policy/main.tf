# The statements for acting on one account's instances, security groups, snapshots, Auto Scaling
# groups and target groups: the responder's own account (root module) and each member account
# (member-role module) get exactly the same ones, so the two cannot drift apart.

# The ARNs name every region, and one deny keeps every regional action to the listed regions: the policy's size
# does not grow with the number of regions (IAM allows 10,240 characters for all of a role's inline policies), and a
# role for every region of an organisation fits.

locals {
  ec2 = "arn:${var.partition}:ec2:*:${var.account_id}"

  instances          = "${local.ec2}:instance/*"
  volumes            = "${local.ec2}:volume/*"
  vpcs               = "${local.ec2}:vpc/*"
  security_groups    = "${local.ec2}:security-group/*"
  network_interfaces = "${local.ec2}:network-interface/*"
  # EC2 writes snapshot ARNs without an account field.
  snapshots           = "arn:${var.partition}:ec2:*::snapshot/*"
  auto_scaling_groups = "arn:${var.partition}:autoscaling:*:${var.account_id}:autoScalingGroup:*:autoScalingGroupName/*"
  target_groups       = "arn:${var.partition}:elasticloadbalancing:*:${var.account_id}:targetgroup/*/*"

  tag_keys = ["guardduty-responder:*", "Name"]

  read_actions = concat(
    ["ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "ec2:DescribeSnapshots", "autoscaling:DescribeAutoScalingInstances", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"],
    var.credential_actions ? ["ec2:DescribeIamInstanceProfileAssociations"] : [],
  )

  containment_statements = [
    {
      Sid      = "ReadTheEstate"
      Effect   = "Allow"
      Action   = local.read_actions
      Resource = "*" # Describe* actions support no resource-level permissions.
    },
    {
      Sid      = "CreateContainmentGroups"
      Effect   = "Allow"
      Action   = ["ec2:CreateSecurityGroup"]
      Resource = [local.vpcs, local.security_groups]
    },
    {
      Sid       = "ShapeOnlyTheResponderGroups"
      Effect    = "Allow"
      Action    = ["ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"]
      Resource  = local.security_groups
      Condition = { StringLike = { "aws:ResourceTag/guardduty-responder:role" = ["isolation", "untracking"] } }
    },
    {
      # A group created in a race another invocation won (the ledger records the winner's): the
      # responder deletes its own spare one. Only groups created with the responder's role tag.
      Sid       = "DeleteSpareContainmentGroups"
      Effect    = "Allow"
      Action    = ["ec2:DeleteSecurityGroup"]
      Resource  = local.security_groups
      Condition = { StringLike = { "aws:ResourceTag/guardduty-responder:role" = ["isolation", "untracking"] } }
    },
    {
      Sid      = "MoveNetworkInterfaces"
      Effect   = "Allow"
      Action   = ["ec2:ModifyNetworkInterfaceAttribute"]
      Resource = [local.network_interfaces, local.security_groups, local.instances, local.vpcs]
    },
    # Evidence keeps the instance: termination protection, shutdown behaviour "stop", volumes kept on termination
    # (guardduty_responder.evidence.protect_instance), and no other attribute (its type, user data, source/dest
    # check, groups). EC2 sets ec2:Attribute for attributes that are a primitive or a Value-only object, and not
    # for complex ones such as BlockDeviceMappings
    # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/iam-policies-for-amazon-ec2.html#attribute-key); its
    # documented examples hold the attribute's name in either case ("Description" for ModifyImageAttribute's
    # "description"), so the names are compared without case.
    {
      Sid       = "KeepTheInstance"
      Effect    = "Allow"
      Action    = ["ec2:ModifyInstanceAttribute"]
      Resource  = local.instances
      Condition = { StringEqualsIgnoreCase = { "ec2:Attribute" = ["disableApiTermination", "instanceInitiatedShutdownBehavior", "blockDeviceMapping"] } }
    },
    # The volumes' DeleteOnTermination goes in BlockDeviceMappings, which carries no ec2:Attribute: only a
    # request without the key. Should EC2 leave the key out of other requests too, this allows them as before.
    {
      Sid       = "KeepTheVolumes"
      Effect    = "Allow"
      Action    = ["ec2:ModifyInstanceAttribute"]
      Resource  = local.instances
      Condition = { Null = { "ec2:Attribute" = "true" } }
    },
    {
      Sid      = "SnapshotTheVolumes"
      Effect   = "Allow"
      Action   = ["ec2:CreateSnapshots"]
      Resource = [local.instances, local.volumes, local.snapshots]
    },
    {
      Sid       = "WriteOnlyTheResponderTags"
      Effect    = "Allow"
      Action    = ["ec2:CreateTags"]
      Resource  = [local.instances, local.network_interfaces, local.snapshots]
      Condition = { "ForAllValues:StringLike" = { "aws:TagKeys" = local.tag_keys } }
    },
    {
      # Groups are tagged only as they are created: the role cannot mark an existing group as one
      # of its own and then rewrite its rules.
      Sid      = "TagGroupsOnlyAtCreation"
      Effect   = "Allow"
      Action   = ["ec2:CreateTags"]
      Resource = local.security_groups
      Condition = {
        StringEquals              = { "ec2:CreateAction" = "CreateSecurityGroup" }
        "ForAllValues:StringLike" = { "aws:TagKeys" = local.tag_keys }
      }
    },
    {
      Sid      = "TakeOutOfService"
      Effect   = "Allow"
      Action   = ["autoscaling:EnterStandby", "autoscaling:DetachInstances", "elasticloadbalancing:DeregisterTargets"]
      Resource = [local.auto_scaling_groups, local.target_groups]
    },
  ]

  # Stolen instance credentials stay valid until they expire: the instance loses its profile, and
  # the role gets a deny-only inline policy for sessions issued before now (as the IAM console's
  # "Revoke active sessions" does).
  credential_statements = [
    {
      Sid      = "DetachTheInstanceProfile"
      Effect   = "Allow"
      Action   = ["ec2:DisassociateIamInstanceProfile"]
      Resource = local.instances
    },
    {
      # To confirm that the role a finding names is the one whose session was stolen, and that
      # nothing but this instance uses it, before its sessions are revoked.
      Sid      = "ReadTheInstanceRole"
      Effect   = "Allow"
      Action   = ["iam:GetRole", "iam:ListInstanceProfilesForRole"]
      Resource = "arn:${var.partition}:iam::${var.account_id}:role/*"
    },
    {
      Sid      = "RevokeOlderRoleSessions"
      Effect   = "Allow"
      Action   = ["iam:PutRolePolicy"]
      Resource = "arn:${var.partition}:iam::${var.account_id}:role/*" # The instance's role is known only from the finding, and IAM cannot bound what the written policy says.
    },
  ]

  statements = concat(local.containment_statements, [for statement in local.credential_statements : statement if var.credential_actions])

  # The roles whose policies must never be written: the responder's and the member roles, roles
  # AWS manages (SSO, service-linked), and the Organization's administrator role. Deny wins over
  # the RevokeOlderRoleSessions allow.
  protected_roles = concat(
    flatten([for name in var.protected_role_names : ["arn:${var.partition}:iam::${var.account_id}:role/${name}", "arn:${var.partition}:iam::${var.account_id}:role/*/${name}"]]),
    [
      "arn:${var.partition}:iam::${var.account_id}:role/aws-reserved/*",
      "arn:${var.partition}:iam::${var.account_id}:role/aws-service-role/*",
      "arn:${var.partition}:iam::${var.account_id}:role/OrganizationAccountAccessRole",
    ],
  )
  credential_guard_statements = var.credential_actions ? [
    {
      Sid      = "NeverWriteProtectedRoles"
      Effect   = "Deny"
      Action   = ["iam:PutRolePolicy"]
      Resource = local.protected_roles
    },
  ] : []

  # IAM is global (its requests name us-east-1 whatever the region): only the regional services are bounded.
  regional_actions = sort(distinct([
    for action in flatten([for statement in local.statements : statement.Action]) : action if !startswith(action, "iam:")
  ]))
  guard_statements = concat([
    {
      Sid       = "OnlyInTheListedRegions"
      Effect    = "Deny"
      Action    = local.regional_actions
      Resource  = "*"
      Condition = { StringNotEquals = { "aws:RequestedRegion" = var.regions } }
    },
  ], local.credential_guard_statements)
}
