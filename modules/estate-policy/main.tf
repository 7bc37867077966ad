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

  # DescribeNetworkInterfaces: the read that verifies containment.
  read_actions = concat(
    ["ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "ec2:DescribeSnapshots", "ec2:DescribeNetworkInterfaces", "autoscaling:DescribeAutoScalingInstances", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"],
    var.identity_actions ? ["ec2:DescribeIamInstanceProfileAssociations"] : [],
  )

  containment_statements = [
    {
      Sid      = "ReadTheEstate"
      Effect   = "Allow"
      Action   = local.read_actions
      Resource = "*" # Describe* actions support no resource-level permissions.
    },
    {
      # The incident's evidence: the serial console as EC2 last kept it, of instances the responder has tagged only.
      Sid       = "ReadTheConsole"
      Effect    = "Allow"
      Action    = ["ec2:GetConsoleOutput"]
      Resource  = local.instances
      Condition = { Null = { "aws:ResourceTag/guardduty-responder:finding-id" = "false" } }
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

  # Identity containment (guardduty_responder.identity): the instance loses its profile, and its role gets an inline
  # policy `guardduty-responder-revoke-<instance id>` denying everything to the credentials delivered to this
  # instance (ec2:SourceInstanceARN) before now (aws:TokenIssueTime). The instance's role is known only when it is
  # isolated, and IAM cannot bound what a written policy says: the guard statements keep protected roles out of reach.
  identity_statements = [
    {
      Sid      = "DetachTheInstanceProfile"
      Effect   = "Allow"
      Action   = ["ec2:DisassociateIamInstanceProfile"]
      Resource = local.instances
    },
    {
      Sid      = "FindTheInstanceRole"
      Effect   = "Allow"
      Action   = ["iam:GetInstanceProfile"]
      Resource = "arn:${var.partition}:iam::${var.account_id}:instance-profile/*"
    },
    {
      # Write this instance's revocation; when the role's inline policies are full, read and delete the responder's
      # own revocations older than any credential lives (36 hours) to make room.
      Sid      = "RevokeTheInstanceCredentials"
      Effect   = "Allow"
      Action   = ["iam:PutRolePolicy", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:DeleteRolePolicy"]
      Resource = "arn:${var.partition}:iam::${var.account_id}:role/*"
    },
  ]

  metadata_statements = [
    {
      Sid      = "TurnTheMetadataServiceOff"
      Effect   = "Allow"
      Action   = ["ec2:ModifyInstanceMetadataOptions"]
      Resource = local.instances
    },
  ]

  # snapshot_lock_days > 0: each evidence snapshot locked in governance mode as soon as it is taken.
  snapshot_lock_statements = [
    {
      Sid      = "LockTheSnapshots"
      Effect   = "Allow"
      Action   = ["ec2:LockSnapshot"]
      Resource = local.snapshots
    },
  ]

  # credential_revocation = "role": a credential finding revokes every older session of the stolen role (as the IAM
  # console's "Revoke active sessions" does), after confirming that it is the stolen role and that nothing else uses it.
  credential_statements = [
    {
      Sid      = "ReadTheStolenRole"
      Effect   = "Allow"
      Action   = ["iam:GetRole", "iam:ListInstanceProfilesForRole"]
      Resource = "arn:${var.partition}:iam::${var.account_id}:role/*"
    },
    {
      Sid      = "RevokeOlderRoleSessions"
      Effect   = "Allow"
      Action   = ["iam:PutRolePolicy"]
      Resource = "arn:${var.partition}:iam::${var.account_id}:role/*"
    },
  ]

  # Filtered, not chosen with a conditional: each statement keeps its own type (a conditional would unify them).
  statements = concat(
    local.containment_statements,
    [for statement in local.identity_statements : statement if var.identity_actions],
    [for statement in local.metadata_statements : statement if var.metadata_actions],
    [for statement in local.credential_statements : statement if var.credential_actions],
    [for statement in local.snapshot_lock_statements : statement if var.snapshot_lock_actions],
  )

  # The roles whose policies must never be written: the responder's and the member roles, roles
  # AWS manages (SSO, service-linked), and the Organization's administrator role. Deny wins over
  # the allows above.
  protected_roles = concat(
    # One pattern a name, at any path: "*" also matches no path at all, and a deny that matches a few more names
    # protects more (two patterns a name would not fit a member role for every region).
    [for name in var.protected_role_names : "arn:${var.partition}:iam::${var.account_id}:role/*${name}"],
    [
      "arn:${var.partition}:iam::${var.account_id}:role/aws-reserved/*",
      "arn:${var.partition}:iam::${var.account_id}:role/aws-service-role/*",
      "arn:${var.partition}:iam::${var.account_id}:role/OrganizationAccountAccessRole",
    ],
  )
  credential_guard_statements = var.identity_actions || var.credential_actions ? [
    {
      Sid      = "NeverWriteProtectedRoles"
      Effect   = "Deny"
      Action   = ["iam:PutRolePolicy", "iam:DeleteRolePolicy"]
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
