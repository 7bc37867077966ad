# Plan-only checks of modules/responder and modules/member-role with a mocked provider: no account, no network.
# Run from the repository root with `terraform test` (after `terraform init`).

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  jira_project_key = "SEC"
}

run "rule_passes_guardduty_instance_findings_from_the_minimum_severity" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    min_severity = 7
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).source == ["aws.guardduty"]
    error_message = "the rule must match source aws.guardduty only"
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern)["detail-type"] == ["GuardDuty Finding"]
    error_message = "the rule must match detail-type GuardDuty Finding only"
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail.severity == [{ numeric = [">=", 7] }]
    error_message = "the rule must compare the severity of every finding numerically with the minimum"
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"][0] == { resource = { resourceType = ["Instance"] } }
    error_message = "with no prefixes the rule must pass every EC2 instance finding type"
  }
  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"][1] == {
      resource = { resourceType = ["Container", "ECSCluster", "EKSCluster"], instanceDetails = { instanceId = [{ exists = true }] } }
    }
    error_message = "the rule must pass container and cluster findings that name the EC2 instance they run on, and no others"
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"][2] == { resource = { resourceType = ["AttackSequence"] }, type = [{ prefix = "AttackSequence:EC2/" }] }
    error_message = "the rule must pass attack sequences about EC2 instances (group findings), and no other attack sequence"
  }
  assert {
    condition     = length(jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"]) == 4
    error_message = "by default (credential_findings = report) the rule must pass instance, container host, group and credential findings only"
  }
}

run "finding_type_prefixes_narrow_the_rule" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    finding_type_prefixes = ["Backdoor:EC2/", "CryptoCurrency:EC2/"]
    credential_findings   = "ignore"
  }

  assert {
    condition     = alltrue([for shape in jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"] : shape.type == [{ prefix = "Backdoor:EC2/" }, { prefix = "CryptoCurrency:EC2/" }] if shape.resource.resourceType != ["AttackSequence"]])
    error_message = "each finding type prefix must become a prefix match, on instance and container host findings alike"
  }
}

run "finding_type_prefixes_narrow_only_the_instance_findings" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    finding_type_prefixes = ["Backdoor:EC2/"]
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"] == [
      { resource = { resourceType = ["Instance"] }, type = [{ prefix = "Backdoor:EC2/" }] },
      {
        resource = { resourceType = ["Container", "ECSCluster", "EKSCluster"], instanceDetails = { instanceId = [{ exists = true }] } }
        type     = [{ prefix = "Backdoor:EC2/" }]
      },
      { resource = { resourceType = ["AttackSequence"] }, type = [{ prefix = "AttackSequence:EC2/" }] },
      { resource = { resourceType = ["AccessKey"] }, type = [{ prefix = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration" }] },
    ]
    error_message = "the prefixes narrow the instance findings; credential and group findings keep their own type"
  }
}

run "credential_findings_reach_the_function_when_reported" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    credential_findings = "report"
    contain_identity    = false
  }

  assert {
    condition = contains(jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"], {
      resource = { resourceType = ["AccessKey"] }
      type     = [{ prefix = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration" }]
    })
    error_message = "with credential_findings = report the rule must pass instance credential exfiltration findings"
  }
  assert {
    condition     = !contains(flatten([for statement in local.responder_statements : statement.Action]), "iam:PutRolePolicy")
    error_message = "reporting credential findings without identity containment must not let the role touch IAM"
  }
}

run "identity_containment_is_on_by_default_with_its_own_statements" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = one([for statement in local.responder_statements : statement if statement.Sid == "RevokeTheInstanceCredentials"]).Action == ["iam:PutRolePolicy", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:DeleteRolePolicy"] && one([for statement in local.responder_statements : statement.Resource if statement.Sid == "RevokeTheInstanceCredentials"]) == "arn:aws:iam::123456789012:role/*"
    error_message = "revoking an instance's credentials writes inline policies of the account's roles only"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement.Resource if statement.Sid == "FindTheInstanceRole"]) == "arn:aws:iam::123456789012:instance-profile/*" && one([for statement in local.responder_statements : statement.Action if statement.Sid == "FindTheInstanceRole"]) == ["iam:GetInstanceProfile"]
    error_message = "the instance's role is read from its instance profile only"
  }
  assert {
    condition     = length([for statement in local.responder_statements : statement if contains(statement.Action, "iam:GetRole") || contains(statement.Action, "ec2:ModifyInstanceMetadataOptions")]) == 0
    error_message = "without credential_revocation = role or disable_instance_metadata, no role reads and no metadata changes"
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.this.environment[0].variables), "SNAPSHOT_LOCK_DAYS") && length([for statement in local.responder_statements : statement if contains(statement.Action, "ec2:LockSnapshot")]) == 0
    error_message = "by default snapshots are not locked, and the role may not lock them"
  }
  assert {
    condition     = one([for statement in module.estate_policy.guard_statements : statement.Action if statement.Sid == "NeverWriteProtectedRoles"]) == ["iam:PutRolePolicy", "iam:DeleteRolePolicy"]
    error_message = "protected roles are never written nor have a policy deleted"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.CONTAIN_IDENTITY == "true" && aws_lambda_function.this.environment[0].variables.RESPONDER_ROLE_NAME == "guardduty-responder-eu-west-1" && aws_lambda_function.this.environment[0].variables.CREDENTIAL_REVOCATION == "instance" && aws_lambda_function.this.environment[0].variables.DISABLE_INSTANCE_METADATA == "false"
    error_message = "the function must know identity containment's settings and its own role"
  }
}

run "protected_roles_and_metadata_reach_the_policy_and_the_function" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    disable_instance_metadata = true
    protected_role_names      = ["payments-*", "billing"]
  }

  assert {
    condition     = one([for statement in local.responder_statements : statement.Resource if statement.Sid == "TurnTheMetadataServiceOff"]) == "arn:aws:ec2:*:123456789012:instance/*"
    error_message = "the metadata service may be turned off on the account's instances"
  }
  assert {
    condition     = contains(one([for statement in module.estate_policy.guard_statements : statement.Resource if statement.Sid == "NeverWriteProtectedRoles"]), "arn:aws:iam::123456789012:role/*payments-*") && contains(one([for statement in module.estate_policy.guard_statements : statement.Resource if statement.Sid == "NeverWriteProtectedRoles"]), "arn:aws:iam::123456789012:role/*billing")
    error_message = "the listed roles must be denied to the role at any path (one pattern a name)"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.PROTECTED_ROLE_NAMES == "payments-*,billing"
    error_message = "the listed roles must reach the function"
  }
}

run "snapshot_lock_days_reaches_the_function_and_the_policy" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    snapshot_lock_days = 30
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables.SNAPSHOT_LOCK_DAYS == "30" && one([for statement in local.responder_statements : statement.Resource if statement.Sid == "LockTheSnapshots"]) == "arn:aws:ec2:*::snapshot/*"
    error_message = "with snapshot_lock_days the function locks its snapshots, and may lock snapshots only"
  }
}

run "the_evidence_bucket_is_locked_versioned_encrypted_and_refuses_deletes" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = aws_s3_bucket.evidence[0].object_lock_enabled && aws_s3_bucket_versioning.evidence[0].versioning_configuration[0].status == "Enabled"
    error_message = "the evidence bucket must have Object Lock and versioning"
  }
  assert {
    condition     = one(one(aws_s3_bucket_object_lock_configuration.evidence[0].rule).default_retention).mode == "GOVERNANCE" && one(one(aws_s3_bucket_object_lock_configuration.evidence[0].rule).default_retention).days == 365
    error_message = "by default each evidence object is kept 365 days in governance mode"
  }
  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.evidence[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "the evidence is encrypted with the deployment's key"
  }
  assert {
    condition     = [for statement in jsondecode(aws_s3_bucket_policy.evidence[0].policy).Statement : [statement.Sid, statement.Effect]] == [["OnlyOverTls", "Deny"], ["NeverDeleteEvidence", "Deny"], ["OnlyConditionalWrites", "Deny"]] && contains(one([for statement in jsondecode(aws_s3_bucket_policy.evidence[0].policy).Statement : statement.Action if statement.Sid == "NeverDeleteEvidence"]), "s3:DeleteObjectVersion")
    error_message = "the bucket policy refuses plain HTTP, every delete and any write that could replace an object"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.EVIDENCE_BUCKET == "guardduty-responder-evidence-${data.aws_caller_identity.current.account_id}-eu-west-1" && length(aws_s3_bucket_logging.evidence) == 0
    error_message = "the function writes to the bucket the module creates; no access logging unless asked"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement.Resource if statement.Sid == "StoreEvidence"]) == "${local.evidence_bucket_arn}/incidents/*"
    error_message = "the function may write and read only under incidents/"
  }
}

run "evidence_retention_mode_and_access_logging_are_the_operator_s" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    name_prefix                = "guardduty-responder-secops-emea1"
    evidence_lock_mode         = "COMPLIANCE"
    evidence_retention_days    = 2555
    evidence_access_log_bucket = "org-access-logs"
  }

  assert {
    condition     = one(one(aws_s3_bucket_object_lock_configuration.evidence[0].rule).default_retention).mode == "COMPLIANCE" && one(one(aws_s3_bucket_object_lock_configuration.evidence[0].rule).default_retention).days == 2555
    error_message = "the lock mode and retention are the variables'"
  }
  assert {
    condition     = aws_s3_bucket_logging.evidence[0].target_bucket == "org-access-logs" && aws_s3_bucket_logging.evidence[0].target_prefix == "guardduty-responder-evidence/"
    error_message = "access logs go to evidence_access_log_bucket"
  }
  assert {
    condition     = length(aws_s3_bucket.evidence[0].bucket) <= 63 && startswith(aws_s3_bucket.evidence[0].bucket, "guardduty-responder-secops-emea1-ev-")
    error_message = "a long name_prefix still gets a bucket name S3 accepts"
  }
}

run "an_existing_evidence_bucket_is_used_and_none_is_created" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    existing_evidence_bucket = "org-forensics-evidence"
  }

  assert {
    condition     = length(aws_s3_bucket.evidence) == 0 && length(aws_s3_bucket_policy.evidence) == 0 && aws_lambda_function.this.environment[0].variables.EVIDENCE_BUCKET == "org-forensics-evidence"
    error_message = "with existing_evidence_bucket nothing is created and the function writes there"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement.Resource if statement.Sid == "StoreEvidence"]) == "arn:aws:s3:::org-forensics-evidence/incidents/*"
    error_message = "the function may write only under that bucket's incidents/"
  }
}

run "malware_scan_starts_scans_and_reads_their_verdicts_only_when_on" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    malware_scan = true
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables.MALWARE_SCAN == "true"
    error_message = "with malware_scan the function scans isolated instances"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement.Resource if statement.Sid == "FollowMalwareScans"]) == "arn:aws:guardduty:eu-west-1:${data.aws_caller_identity.current.account_id}:detector/*"
    error_message = "scans are read from the detectors of the deployment's region and account only"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement.Condition if statement.Sid == "LetGuardDutyCreateItsScanRole"]) == { StringEquals = { "iam:AWSServiceName" = "malware-protection.guardduty.amazonaws.com" } }
    error_message = "the only service-linked role the function may create is GuardDuty's malware protection one"
  }
}

run "without_malware_scan_nothing_is_scanned" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = !contains(keys(aws_lambda_function.this.environment[0].variables), "MALWARE_SCAN") && !contains(flatten([for statement in local.responder_statements : statement.Action]), "guardduty:StartMalwareScan")
    error_message = "malware_scan is off by default: no scan, no permission"
  }
}

run "an_unknown_evidence_lock_mode_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    evidence_lock_mode      = "governance-ish"
    evidence_retention_days = 0
  }

  expect_failures = [var.evidence_lock_mode, var.evidence_retention_days]
}

run "snapshot_lock_days_beyond_a_hundred_years_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    snapshot_lock_days = 36501
  }

  expect_failures = [var.snapshot_lock_days]
}

run "credential_findings_are_contained_with_more_actions_and_a_guard" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    credential_findings   = "contain"
    credential_revocation = "role"
  }

  assert {
    condition = contains(jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"], {
      resource = { resourceType = ["AccessKey"] }
      type     = [{ prefix = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration" }]
    })
    error_message = "with credential_findings = contain the rule must pass instance credential exfiltration findings"
  }
  assert {
    condition     = contains(one([for statement in local.responder_statements : statement.Action if statement.Sid == "ReadTheEstate"]), "ec2:DescribeIamInstanceProfileAssociations")
    error_message = "finding the instance profile is a region-bound read like the others"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement if contains(statement.Action, "ec2:DisassociateIamInstanceProfile")]).Resource == "arn:aws:ec2:*:123456789012:instance/*" && contains(one([for statement in module.estate_policy.guard_statements : statement.Action if statement.Sid == "OnlyInTheListedRegions"]), "ec2:DisassociateIamInstanceProfile")
    error_message = "the instance profile may be removed from the account's instances, in this region only"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement if statement.Sid == "RevokeOlderRoleSessions"]).Action == ["iam:PutRolePolicy"] && one([for statement in local.responder_statements : statement if statement.Sid == "RevokeOlderRoleSessions"]).Resource == "arn:aws:iam::123456789012:role/*"
    error_message = "revoking the role's sessions needs iam:PutRolePolicy alone, on the account's roles only"
  }
  assert {
    condition = one([for statement in local.guard_statements : statement if statement.Effect == "Deny"]).Resource == "arn:aws:iam::123456789012:role/guardduty-responder-eu-west-1" && alltrue([
      for action in ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"] :
      contains(one([for statement in local.guard_statements : statement if statement.Effect == "Deny"]).Action, action)
    ])
    error_message = "the role must never be able to loosen its own permissions"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement if contains(statement.Action, "iam:GetRole")]).Action == ["iam:GetRole", "iam:ListInstanceProfilesForRole"] && one([for statement in local.responder_statements : statement.Resource if contains(statement.Action, "iam:GetRole")]) == "arn:aws:iam::123456789012:role/*"
    error_message = "confirming the stolen role reads the account's roles only"
  }
  assert {
    condition = alltrue([for arn in ["arn:aws:iam::123456789012:role/*guardduty-responder-*", "arn:aws:iam::123456789012:role/aws-reserved/*", "arn:aws:iam::123456789012:role/OrganizationAccountAccessRole"] :
      contains(one([for statement in module.estate_policy.guard_statements : statement if statement.Sid == "NeverWriteProtectedRoles"]).Resource, arn)
    ]) && one([for statement in module.estate_policy.guard_statements : statement.Effect if statement.Sid == "NeverWriteProtectedRoles"]) == "Deny"
    error_message = "the responder's roles in every region, AWS's reserved roles and the Organization's administrator role must never be written"
  }
}

run "credential_findings_can_be_ignored" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    credential_findings = "ignore"
  }

  assert {
    condition     = !contains(flatten([for shape in jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"] : shape.resource.resourceType]), "AccessKey")
    error_message = "ignored credential findings must not reach the function"
  }
  assert {
    condition     = [for shape in jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"] : shape.resource.resourceType] == [["Instance"], ["Container", "ECSCluster", "EKSCluster"], ["AttackSequence"]]
    error_message = "with credential findings ignored the rule must match EC2 instance findings (containers on them, groups of them) only"
  }
  assert {
    condition     = alltrue([for shape in jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail["$or"] : !contains(keys(shape), "type") if shape.resource.resourceType != ["AttackSequence"]])
    error_message = "with no prefixes the rule must pass every finding type (group findings keep their own)"
  }
}

run "rule_target_retries_and_dead_letters" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = aws_cloudwatch_event_target.this.retry_policy[0].maximum_retry_attempts > 0
    error_message = "the rule's target must retry"
  }
  assert {
    condition     = length(aws_cloudwatch_event_target.this.dead_letter_config) == 1
    error_message = "the rule's target must have a dead-letter queue"
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.this.maximum_retry_attempts == 2 && length(aws_lambda_function_event_invoke_config.this.destination_config[0].on_failure) == 1
    error_message = "failed invocations must be retried, then sent to the failure destination"
  }
}

run "function_environment_uses_the_interface_names" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    dry_run                 = true
    max_isolations_per_hour = 7
  }

  assert {
    condition = alltrue([for name in ["RESPONDER_TABLE", "RESPONDER_TOPIC_ARN", "JIRA_SECRET_ARN", "JIRA_PROJECT_KEY", "JIRA_ISSUE_TYPE", "DRY_RUN", "EXEMPT_TAG_KEY", "MAX_ISOLATIONS_PER_HOUR"] :
    contains(keys(aws_lambda_function.this.environment[0].variables), name)])
    error_message = "the function's environment must carry every name of the fixed interface"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.DRY_RUN == "true" && aws_lambda_function.this.environment[0].variables.MAX_ISOLATIONS_PER_HOUR == "7"
    error_message = "variables must reach the function's environment"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.JIRA_PROJECT_KEY == "SEC"
    error_message = "the Jira project key must reach the function"
  }
  assert {
    condition     = aws_lambda_function.this.runtime == "python3.13" && aws_lambda_function.this.handler == "guardduty_responder.handler.lambda_handler"
    error_message = "the function must run guardduty_responder.handler.lambda_handler on python3.13"
  }
}

run "function_environment_acts_in_its_own_account_by_default" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables.RESPONDER_ACCOUNT_ID == "123456789012"
    error_message = "the function must know its own account, where it acts without assuming a role"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.MEMBER_ROLE_NAME == "" && aws_lambda_function.this.environment[0].variables.MEMBER_ROLE_EXTERNAL_ID == ""
    error_message = "without member_role_name the function must be given no member role"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.CREDENTIAL_FINDINGS == "report"
    error_message = "credential findings are reported by default"
  }
}

run "function_environment_names_the_member_role" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    member_role_name        = "gd-member"
    member_role_external_id = "responder-7f3a"
    organization_id         = "o-a1b2c3d4e5"
    credential_findings     = "contain"
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables.MEMBER_ROLE_NAME == "gd-member" && aws_lambda_function.this.environment[0].variables.MEMBER_ROLE_EXTERNAL_ID == "responder-7f3a"
    error_message = "the member role's name and external id must reach the function"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.CREDENTIAL_FINDINGS == "contain"
    error_message = "credential_findings must reach the function"
  }
}

run "role_grants_what_the_code_calls_and_no_more" {
  command = plan

  module {
    source = "./modules/responder"
  }

  override_resource {
    target          = aws_dynamodb_table.this
    override_during = plan
    values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/guardduty-responder-ledger" }
  }
  override_resource {
    target          = aws_sns_topic.this
    override_during = plan
    values          = { arn = "arn:aws:sns:eu-west-1:123456789012:guardduty-responder-notifications" }
  }
  override_resource {
    target          = aws_secretsmanager_secret.jira
    override_during = plan
    values          = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:guardduty-responder/jira-AbCdEf" }
  }

  assert {
    condition = sort(distinct(flatten([for statement in local.responder_statements : statement.Action]))) == sort([
      "autoscaling:DescribeAutoScalingInstances", "autoscaling:DetachInstances", "autoscaling:EnterStandby",
      "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
      "guardduty:GetFindings", "guardduty:ListDetectors",
      "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateSecurityGroup",
      "ec2:CreateSnapshots", "ec2:CreateTags", "ec2:DeleteSecurityGroup", "ec2:DescribeInstances", "ec2:DescribeSecurityGroups",
      "ec2:DescribeSnapshots", "ec2:ModifyInstanceAttribute", "ec2:ModifyNetworkInterfaceAttribute",
      "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
      "elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
      "secretsmanager:GetSecretValue", "sns:Publish",
      # Identity containment, on by default: verify, remove the profile, revoke this instance's credentials.
      "ec2:DescribeNetworkInterfaces", "ec2:DescribeIamInstanceProfileAssociations", "ec2:DisassociateIamInstanceProfile",
      "iam:GetInstanceProfile", "iam:PutRolePolicy", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:DeleteRolePolicy",
      # The incident's evidence: the console read where the instance lives, the objects written to the bucket.
      "ec2:GetConsoleOutput", "s3:PutObject", "s3:GetObject",
    ])
    error_message = "the role's actions must be exactly the code's (see guardduty_responder_tools.permissions)"
  }
  assert {
    condition = alltrue(flatten([for statement in local.responder_statements : [
      for resource in flatten([statement.Resource]) : startswith(resource, "arn:aws:") && (strcontains(resource, ":eu-west-1:") || strcontains(resource, ":*:123456789012:") || strcontains(resource, ":*::snapshot/") || strcontains(resource, ":iam::123456789012:") || resource == "${local.evidence_bucket_arn}/incidents/*")
    ] if !contains(["ReadTheEstate", "FindTheDetector"], statement.Sid)]))
    error_message = "every statement but the read-only Describe* and ListDetectors ones must be scoped to ARNs of the deployment's region or, for the estate, of its account (IAM's are global)"
  }
  assert {
    condition = jsonencode(one([for statement in module.estate_policy.guard_statements : statement if statement.Sid == "OnlyInTheListedRegions"])) == jsonencode({
      Sid       = "OnlyInTheListedRegions"
      Effect    = "Deny"
      Action    = sort(distinct([for action in flatten([for statement in module.estate_policy.statements : statement.Action]) : action if !startswith(action, "iam:")]))
      Resource  = "*"
      Condition = { StringNotEquals = { "aws:RequestedRegion" = ["eu-west-1"] } }
    })
    error_message = "every regional action on the estate must be denied outside the deployment's region (the role's policy takes every guard statement)"
  }
  assert {
    condition = [for statement in local.responder_statements : statement.Resource if contains(statement.Action, "guardduty:GetFindings")] == [
      "arn:aws:guardduty:eu-west-1:${data.aws_caller_identity.current.account_id}:detector/*"
    ]
    error_message = "GetFindings must be allowed on the detectors of the deployment's region and account only"
  }
}

run "without_a_member_role_the_function_assumes_no_role" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    organization_id = "o-a1b2c3d4e5"
  }

  assert {
    condition     = !anytrue([for action in flatten([for statement in concat(local.responder_statements, local.runtime_statements) : statement.Action]) : startswith(action, "sts:")])
    error_message = "with member_role_name unset the role must have no sts permission at all"
  }
}

run "the_member_role_is_the_only_role_the_function_may_assume" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    member_role_name        = "gd-member"
    member_role_external_id = "responder-7f3a"
    organization_id         = "o-a1b2c3d4e5"
  }

  assert {
    condition     = one([for statement in local.responder_statements : statement if statement.Sid == "ActInMemberAccounts"]).Action == ["sts:AssumeRole"]
    error_message = "the member account statement must allow sts:AssumeRole only"
  }
  assert {
    condition     = one([for statement in local.responder_statements : statement if statement.Sid == "ActInMemberAccounts"]).Resource == "arn:aws:iam::*:role/gd-member"
    error_message = "the function may assume the member role, by name, and no other role"
  }
  assert {
    condition     = length([for statement in concat(local.responder_statements, local.runtime_statements) : statement if anytrue([for action in statement.Action : startswith(action, "sts:")])]) == 1
    error_message = "only the member account statement may grant sts actions"
  }
}

run "organization_id_keeps_the_member_role_inside_the_organisation" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    member_role_name        = "gd-member"
    member_role_external_id = "responder-7f3a"
    organization_id         = "o-a1b2c3d4e5"
  }

  assert {
    condition     = one([for statement in local.responder_statements : statement if statement.Sid == "ActInMemberAccounts"]).Condition == { StringEquals = { "aws:ResourceOrgID" = "o-a1b2c3d4e5" } }
    error_message = "with organization_id the member role may be assumed only in the organisation's accounts"
  }
}

run "only_the_rule_may_invoke_the_function" {
  command = plan

  module {
    source = "./modules/responder"
  }

  override_resource {
    target          = aws_cloudwatch_event_rule.this
    override_during = plan
    values = {
      arn = "arn:aws:events:eu-west-1:123456789012:rule/guardduty-responder-findings"
    }
  }

  assert {
    condition     = aws_lambda_permission.events.principal == "events.amazonaws.com" && aws_lambda_permission.events.source_arn == "arn:aws:events:eu-west-1:123456789012:rule/guardduty-responder-findings"
    error_message = "the invoke permission must be scoped to the rule's ARN"
  }
}

run "state_is_encrypted_recoverable_and_expires" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = aws_dynamodb_table.this.hash_key == "pk" && aws_dynamodb_table.this.billing_mode == "PAY_PER_REQUEST"
    error_message = "the ledger is keyed on pk, on demand"
  }
  assert {
    condition     = aws_dynamodb_table.this.point_in_time_recovery[0].enabled && aws_dynamodb_table.this.ttl[0].enabled && aws_dynamodb_table.this.server_side_encryption[0].enabled
    error_message = "the ledger needs point-in-time recovery, TTL and KMS encryption"
  }
  assert {
    condition     = length(aws_secretsmanager_secret_version.jira) == 0
    error_message = "by default the Jira token must not be stored by Terraform"
  }
}

run "the_exemption_tag_is_on_by_default" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables.EXEMPT_TAG_KEY == "guardduty-responder:exempt"
    error_message = "the exemption tag is on by default"
  }
}

run "exempt_tag_key_null_turns_the_exemption_tag_off" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    exempt_tag_key = null
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables.EXEMPT_TAG_KEY == ""
    error_message = "with exempt_tag_key = null the function must get an empty EXEMPT_TAG_KEY: the tag exemption off"
  }
}

run "an_empty_exempt_tag_key_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    exempt_tag_key = ""
  }

  expect_failures = [var.exempt_tag_key]
}

run "a_severity_outside_the_scale_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    min_severity = 11
  }

  expect_failures = [var.min_severity]
}

run "a_bad_email_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    notification_emails = ["not-an-address"]
  }

  expect_failures = [var.notification_emails]
}

run "a_plain_http_jira_url_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    jira_url = "http://jira.example.com"
  }

  expect_failures = [var.jira_url]
}

run "a_pause_longer_than_a_quarter_of_the_timeout_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    function_timeout_seconds = 120
    isolation_pause_seconds  = 60
  }

  expect_failures = [var.isolation_pause_seconds]
}

run "a_member_role_without_its_external_id_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    member_role_name = "gd-member"
    organization_id  = "o-a1b2c3d4e5"
  }

  expect_failures = [var.member_role_external_id]
}

run "a_member_role_outside_an_organisation_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    member_role_name        = "gd-member"
    member_role_external_id = "responder-7f3a"
  }

  expect_failures = [var.organization_id]
}

run "an_external_id_sts_would_refuse_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    member_role_name        = "gd-member"
    member_role_external_id = "has spaces"
    organization_id         = "o-a1b2c3d4e5"
  }

  expect_failures = [var.member_role_external_id]
}

run "a_malformed_organization_id_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    organization_id = "a1b2c3d4e5"
  }

  expect_failures = [var.organization_id]
}

run "an_unknown_credential_findings_choice_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    credential_findings = "isolate"
  }

  expect_failures = [var.credential_findings]
}

# The member role module, as deployed once in a member account (210987654321).

run "member_role_trusts_only_the_responder_roles_with_the_external_id" {
  command = plan

  module {
    source = "./modules/member-role"
  }

  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "210987654321" }
  }

  variables {
    responder_role_arns = ["arn:aws:iam::123456789012:role/guardduty-responder-eu-west-1", "arn:aws:iam::123456789012:role/guardduty-responder-us-east-1"]
    external_id         = "responder-7f3a"
    regions             = ["eu-west-1", "us-east-1"]
    credential_actions  = true
  }

  assert {
    condition = alltrue([for pattern in ["*guardduty-responder-member", "*guardduty-responder-eu-west-1", "OrganizationAccountAccessRole"] :
      contains(one([for statement in jsondecode(aws_iam_role_policy.this.policy).Statement : statement.Resource if statement.Sid == "NeverWriteProtectedRoles"]), "arn:aws:iam::210987654321:role/${pattern}")
    ])
    error_message = "with credential_actions the member role must be denied writing its own, the responder's and the administrator role's policies"
  }

  assert {
    condition = jsondecode(aws_iam_role.this.assume_role_policy).Statement == [{
      Effect    = "Allow"
      Principal = { AWS = ["arn:aws:iam::123456789012:role/guardduty-responder-eu-west-1", "arn:aws:iam::123456789012:role/guardduty-responder-us-east-1"] }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "sts:ExternalId" = "responder-7f3a" } }
    }]
    error_message = "only the responder roles may assume the member role, and only with the external id"
  }
  assert {
    condition     = aws_iam_role.this.name == "guardduty-responder-member" && aws_iam_role.this.max_session_duration == 3600
    error_message = "the member role has the default name and one-hour sessions"
  }
  assert {
    condition     = length(aws_iam_role.release) == 0
    error_message = "without operators there is no release role"
  }
  assert {
    condition = sort(distinct(flatten([for statement in jsondecode(aws_iam_role_policy.this.policy).Statement : statement.Action if statement.Effect == "Allow"]))) == sort(distinct(flatten([
      for statement in module.estate_policy.statements : statement.Action
    ])))
    error_message = "the member role may do exactly what the estate policy allows"
  }
  assert {
    condition     = [for statement in jsondecode(aws_iam_role_policy.this.policy).Statement : statement if statement.Effect == "Allow"] == jsondecode(jsonencode(module.estate_policy.statements))
    error_message = "the member role's allow statements must be the estate policy's, unchanged"
  }
  assert {
    condition     = alltrue([for action in ["ec2:DescribeIamInstanceProfileAssociations", "ec2:DisassociateIamInstanceProfile", "iam:GetRole", "iam:ListInstanceProfilesForRole", "iam:PutRolePolicy"] : contains(flatten([for statement in module.estate_policy.statements : statement.Action]), action)])
    error_message = "credential_actions must add the credential actions"
  }
  assert {
    condition = alltrue(flatten([for statement in jsondecode(aws_iam_role_policy.this.policy).Statement : [
      for resource in flatten([statement.Resource]) : strcontains(resource, ":210987654321:") || strcontains(resource, "::snapshot/")
    ] if statement.Effect == "Allow" && statement.Sid != "ReadTheEstate"]))
    error_message = "every scoped statement must name the member account's resources"
  }
  assert {
    condition     = one([for statement in module.estate_policy.statements : statement.Resource if statement.Sid == "KeepTheInstance"]) == "arn:aws:ec2:*:210987654321:instance/*"
    error_message = "the statements must reach the member account's instances whatever the region (the regions are bound by one deny)"
  }
  assert {
    condition = contains([for statement in jsondecode(aws_iam_role_policy.this.policy).Statement : jsonencode(statement)], jsonencode({
      Sid       = "OnlyInTheListedRegions"
      Effect    = "Deny"
      Action    = sort(distinct([for action in flatten([for statement in module.estate_policy.statements : statement.Action]) : action if !startswith(action, "iam:")]))
      Resource  = "*"
      Condition = { StringNotEquals = { "aws:RequestedRegion" = ["eu-west-1", "us-east-1"] } }
    }))
    error_message = "every regional action, reads included, must be denied outside the listed regions"
  }
  assert {
    condition = contains(jsondecode(aws_iam_role_policy.this.policy).Statement, {
      Sid      = "NeverLoosenItsOwnPermissions"
      Effect   = "Deny"
      Action   = ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"]
      Resource = "arn:aws:iam::210987654321:role/guardduty-responder-member"
    })
    error_message = "the member role must be denied changing its own permissions"
  }
}

run "member_role_without_credential_actions_cannot_touch_iam" {
  command = plan

  module {
    source = "./modules/member-role"
  }

  variables {
    responder_role_arns = ["arn:aws:iam::123456789012:role/guardduty-responder-eu-west-1"]
    external_id         = "responder-7f3a"
    regions             = ["eu-west-1"]
    identity_actions    = false
  }

  assert {
    condition     = !anytrue([for action in flatten([for statement in jsondecode(aws_iam_role_policy.this.policy).Statement : statement.Action if statement.Effect == "Allow"]) : startswith(action, "iam:")])
    error_message = "without identity_actions and credential_actions the member role may not write IAM policies"
  }
}

run "member_role_trusts_roles_only" {
  command = plan

  module {
    source = "./modules/member-role"
  }

  variables {
    responder_role_arns = ["arn:aws:iam::123456789012:user/someone"]
    external_id         = "responder-7f3a"
    regions             = ["eu-west-1"]
  }

  expect_failures = [var.responder_role_arns]
}

run "operators_release_through_a_role_that_can_only_move_interfaces" {
  command = plan

  module {
    source = "./modules/member-role"
  }

  variables {
    responder_role_arns = ["arn:aws:iam::123456789012:role/guardduty-responder-eu-west-1"]
    operator_role_arns  = ["arn:aws:iam::123456789012:role/incident-responders"]
    external_id         = "responder-7f3a"
    regions             = ["eu-west-1"]
  }

  assert {
    condition     = jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Principal.AWS == ["arn:aws:iam::123456789012:role/guardduty-responder-eu-west-1"]
    error_message = "operators must never get the responder's member role"
  }
  assert {
    condition     = aws_iam_role.release[0].name == "guardduty-responder-member-release" && jsondecode(aws_iam_role.release[0].assume_role_policy).Statement[0].Principal.AWS == ["arn:aws:iam::123456789012:role/incident-responders"] && jsondecode(aws_iam_role.release[0].assume_role_policy).Statement[0].Condition.StringEquals["sts:ExternalId"] == "responder-7f3a"
    error_message = "the release role is the member role's name with -release, trusting the operators with the external id"
  }
  assert {
    condition = toset(flatten([for statement in jsondecode(aws_iam_role_policy.release[0].policy).Statement : statement.Action if statement.Effect == "Allow"])) == toset([
      "ec2:ModifyNetworkInterfaceAttribute", "ec2:DescribeInstances", "ec2:DescribeSecurityGroups",
      "ec2:DescribeIamInstanceProfileAssociations", "autoscaling:DescribeAutoScalingInstances",
      "ec2:AssociateIamInstanceProfile", "ec2:ModifyInstanceMetadataOptions", "iam:PassRole", "iam:DeleteRolePolicy",
      "iam:GetInstanceProfile", "iam:GetRolePolicy",
      "autoscaling:ExitStandby", "autoscaling:AttachInstances", "elasticloadbalancing:RegisterTargets",
    ])
    error_message = "the release role may only put back what containment changed (groups, profile, metadata, timeouts, the revocation, service), after reading the instance"
  }
  assert {
    condition     = one([for statement in jsondecode(aws_iam_role_policy.release[0].policy).Statement : statement.Condition if statement.Action == ["iam:PassRole"]]) == { StringEquals = { "iam:PassedToService" = "ec2.amazonaws.com" } }
    error_message = "the release role passes roles to EC2 only (an instance profile given back)"
  }
  assert {
    condition     = jsonencode(one([for statement in jsondecode(aws_iam_role_policy.release[0].policy).Statement : statement.Condition if contains(statement.Action, "ec2:AssociateIamInstanceProfile")]).Null) == jsonencode({ "aws:ResourceTag/guardduty-responder:finding-id" = "false" })
    error_message = "the release role gives a profile and metadata options back only to instances the responder tagged"
  }
  assert {
    condition = alltrue([for statement in jsondecode(aws_iam_role_policy.release[0].policy).Statement :
      statement.Condition == { StringEquals = { "aws:RequestedRegion" = ["eu-west-1"] } } if contains(flatten([statement.Action]), "ec2:DescribeSecurityGroups")
    ])
    error_message = "the release role reads only in the responder's regions"
  }
  assert {
    condition = jsonencode([for statement in jsondecode(aws_iam_role_policy.release[0].policy).Statement : statement.Condition if contains(flatten([statement.Resource]), "arn:aws:ec2:*:123456789012:network-interface/*")]) == jsonencode([
      { Null = { "aws:ResourceTag/guardduty-responder:finding-id" = "false" }, StringEquals = { "aws:RequestedRegion" = ["eu-west-1"] } }
    ])
    error_message = "the release role may move only the network interfaces the responder tagged with a finding id when it isolated them"
  }
  assert {
    condition = alltrue([for statement in jsondecode(aws_iam_role_policy.release[0].policy).Statement :
      !strcontains(jsonencode(statement.Resource), "network-interface/") if !contains(keys(lookup(statement, "Condition", {})), "Null")
    ])
    error_message = "no statement without the tag condition may name network interfaces"
  }
  assert {
    condition = toset(flatten([for statement in jsondecode(aws_iam_role_policy.release[0].policy).Statement : statement.Resource if statement.Sid == "OntoTheirGroups"])) == toset([
      "arn:aws:ec2:*:123456789012:security-group/*", "arn:aws:ec2:*:123456789012:instance/*", "arn:aws:ec2:*:123456789012:vpc/*",
    ]) && alltrue([for statement in jsondecode(aws_iam_role_policy.release[0].policy).Statement : jsonencode(statement.Condition.StringEquals) == jsonencode({ "aws:RequestedRegion" = ["eu-west-1"] }) if !anytrue([for action in flatten([statement.Action]) : startswith(action, "iam:")])])
    error_message = "the groups (and the instance and VPC IAM also checks) are allowed apart, with no interface tag condition; every regional action in the responder's regions only"
  }
}

run "the_deployed_code_is_the_locked_archive" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    architecture = "x86_64"
  }

  assert {
    condition     = aws_lambda_function.this.source_code_hash == jsondecode(file("lambda_code/archives.lock.json")).function
    error_message = "the function's source_code_hash must be the locked SHA-256 of the function archive"
  }
  assert {
    condition     = aws_lambda_layer_version.dependencies[0].source_code_hash == jsondecode(file("lambda_code/archives.lock.json")).layer.x86_64
    error_message = "the layer's source_code_hash must be the locked SHA-256 of the layer archive of the chosen architecture"
  }
}

run "a_line_logged_at_critical_raises_an_alarm" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = aws_cloudwatch_log_metric_filter.critical.log_group_name == aws_cloudwatch_log_group.this.name
    error_message = "the metric filter must read the function's own log group"
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["critical-log-lines"].metric_name == aws_cloudwatch_log_metric_filter.critical.metric_transformation[0].name &&
      aws_cloudwatch_metric_alarm.this["critical-log-lines"].namespace == aws_cloudwatch_log_metric_filter.critical.metric_transformation[0].namespace &&
      aws_cloudwatch_metric_alarm.this["critical-log-lines"].threshold == 0
    )
    error_message = "the critical-log-lines alarm must fire on the first line the metric filter counts"
  }
}

run "a_schedule_sweeps_unfinished_findings_through_their_index" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    sweep_interval_minutes   = 3
    unfinished_alarm_minutes = 45
  }

  override_resource {
    target          = aws_dynamodb_table.this
    override_during = plan
    values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/guardduty-responder-ledger" }
  }

  assert {
    condition     = aws_cloudwatch_event_rule.sweep.schedule_expression == "rate(3 minutes)"
    error_message = "the sweep runs on the configured schedule"
  }
  assert {
    condition     = aws_lambda_permission.sweep.principal == "events.amazonaws.com" && aws_cloudwatch_event_target.sweep.rule == aws_cloudwatch_event_rule.sweep.name
    error_message = "the schedule's rule targets the function, which EventBridge may invoke"
  }
  assert {
    condition     = one([for index in aws_dynamodb_table.this.global_secondary_index : index if index.name == "unfinished"]).range_key == "lease_until"
    error_message = "the ledger has the sparse index of unfinished findings, keyed with their lease"
  }
  assert {
    condition = [for statement in local.responder_statements : statement.Resource if contains(statement.Action, "dynamodb:Query")] == [
      "arn:aws:dynamodb:eu-west-1:123456789012:table/guardduty-responder-ledger/index/unfinished"
    ]
    error_message = "the function may query the unfinished index only, and may not scan"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.UNFINISHED_ALARM_MINUTES == "45"
    error_message = "the function logs findings unfinished past the configured bound"
  }
  assert {
    condition     = aws_cloudwatch_log_metric_filter.unfinished.metric_transformation[0].name == aws_cloudwatch_metric_alarm.this["unfinished-findings"].metric_name
    error_message = "the unfinished-findings alarm counts the sweep's lines"
  }
}

run "a_sweep_interval_that_is_not_whole_minutes_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    sweep_interval_minutes = 0
  }

  expect_failures = [var.sweep_interval_minutes]
}

run "member_role_trusts_a_deployment_in_every_region_within_iam_s_trust_policy_size" {
  command = plan

  module {
    source = "./modules/member-role"
  }

  variables {
    responder_role_arns = concat([for region in ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ca-central-1", "ca-west-1", "sa-east-1", "me-central-1", "me-south-1", "il-central-1", "af-south-1", "ap-east-1", "mx-central-1", "us-gov-west-1"] : "arn:aws:iam::111111111111:role/guardduty-responder-${region}"], ["arn:aws:iam::111111111111:role/break-glass"])
    external_id         = "responder-7f3a"
    regions             = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ca-central-1", "ca-west-1", "sa-east-1", "me-central-1", "me-south-1", "il-central-1", "af-south-1", "ap-east-1", "mx-central-1", "us-gov-west-1"]
  }

  assert {
    condition     = output.responder_trust_by == "patterns" && jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Principal.AWS == "arn:aws:iam::111111111111:root"
    error_message = "thirty regional roles do not fit as principals: their account is the principal"
  }
  assert {
    condition     = toset(jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Condition.ArnLike["aws:PrincipalArn"]) == toset([for part in ["us", "eu", "ap", "ca", "sa", "me", "il", "af", "mx"] : "arn:aws:iam::111111111111:role/guardduty-responder-${part}-*"])
    error_message = "the callers are the deployment's roles of the listed regions, one pattern per first part of the regions' names (us-gov-west-1 under us-*)"
  }
  assert {
    condition     = jsonencode(jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Condition.StringEquals) == jsonencode({ "aws:PrincipalTag/guardduty-responder:deployment" = "guardduty-responder", "sts:ExternalId" = "responder-7f3a" }) && jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Condition.ArnNotLike["aws:PrincipalArn"] == "arn:aws:iam::111111111111:role/guardduty-responder-*/*"
    error_message = "only roles tagged for the deployment, not under a deeper path, presenting the external id"
  }
  assert {
    condition     = jsonencode(jsondecode(aws_iam_role.this.assume_role_policy).Statement[1].Principal.AWS) == jsonencode(["arn:aws:iam::111111111111:role/break-glass"]) && length(jsondecode(aws_iam_role.this.assume_role_policy).Statement) == 2
    error_message = "a role not named for a listed region stays named"
  }
  assert {
    condition     = length(aws_iam_role.this.assume_role_policy) <= 2048
    error_message = "the trust policy fits IAM's 2,048 characters"
  }
}

run "member_role_names_its_callers_while_they_fit" {
  command = plan

  module {
    source = "./modules/member-role"
  }

  variables {
    responder_role_arns = ["arn:aws:iam::111111111111:role/guardduty-responder-eu-west-1", "arn:aws:iam::111111111111:role/guardduty-responder-us-east-1"]
    external_id         = "responder-7f3a"
    regions             = ["eu-west-1", "us-east-1"]
  }

  assert {
    condition     = jsonencode(jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Principal.AWS) == jsonencode(["arn:aws:iam::111111111111:role/guardduty-responder-eu-west-1", "arn:aws:iam::111111111111:role/guardduty-responder-us-east-1"])
    error_message = "two regional roles fit: they are the principals, by name"
  }
  assert {
    condition     = output.responder_trust_by == "names"
    error_message = "the output says so"
  }
}

# ---------------------------------------------------------------------------------------------
# What a locked-down account brings or requires.
# ---------------------------------------------------------------------------------------------

run "an_existing_key_and_topic_are_used_and_none_is_created" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    kms_key_arn   = "arn:aws:kms:eu-west-1:123456789012:key/2f4e4f4a-7a1b-4a69-9c5e-1f2a3b4c5d6e"
    sns_topic_arn = "arn:aws:sns:eu-west-1:123456789012:security-alerts"
    notification_subscriptions = {
      pager  = { protocol = "https", endpoint = "https://events.example.com/hook", raw_message_delivery = true }
      siem   = { protocol = "sqs", endpoint = "arn:aws:sqs:eu-west-1:123456789012:siem-intake" }
      triage = { protocol = "lambda", endpoint = "arn:aws:lambda:eu-west-1:123456789012:function:triage", filter_policy = "{\"decision\":[\"isolate\"]}" }
    }
  }

  assert {
    condition     = length(aws_kms_key.this) + length(aws_kms_alias.this) + length(aws_sns_topic.this) + length(aws_sns_topic_policy.this) == 0
    error_message = "a key and a topic given are not created again"
  }
  assert {
    condition = alltrue([
      aws_lambda_function.this.kms_key_arn == var.kms_key_arn,
      aws_dynamodb_table.this.server_side_encryption[0].kms_key_arn == var.kms_key_arn,
      aws_sqs_queue.failed.kms_master_key_id == var.kms_key_arn,
      aws_sqs_queue.undelivered.kms_master_key_id == var.kms_key_arn,
      aws_secretsmanager_secret.jira.kms_key_id == var.kms_key_arn,
      aws_cloudwatch_log_group.this.kms_key_id == var.kms_key_arn,
    ])
    error_message = "everything the deployment encrypts uses the key given"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.RESPONDER_TOPIC_ARN == var.sns_topic_arn && alltrue([for alarm in aws_cloudwatch_metric_alarm.this : alarm.alarm_actions == toset([var.sns_topic_arn])])
    error_message = "the function and the alarms notify the topic given"
  }
  assert {
    condition     = { for name, subscription in aws_sns_topic_subscription.other : name => [subscription.topic_arn, subscription.protocol] } == { pager = [var.sns_topic_arn, "https"], siem = [var.sns_topic_arn, "sqs"], triage = [var.sns_topic_arn, "lambda"] }
    error_message = "subscriptions of any protocol are made on the topic given"
  }
  assert {
    condition     = aws_sns_topic_subscription.other["pager"].raw_message_delivery && aws_sns_topic_subscription.other["triage"].filter_policy == "{\"decision\":[\"isolate\"]}"
    error_message = "a subscription's raw delivery and filter policy are passed on"
  }
  assert {
    condition     = contains([for statement in local.responder_statements : statement.Resource if statement.Sid == "Notify"], var.sns_topic_arn) && contains([for statement in local.runtime_statements : statement.Resource if statement.Sid == "UseTheKey"], var.kms_key_arn)
    error_message = "the role may publish to the topic and use the key given"
  }
}

run "alarms_can_be_left_out_or_sent_elsewhere" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    create_alarms = false
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.this) == 0
    error_message = "create_alarms = false creates no alarm"
  }
}

run "alarm_actions_replace_the_topic" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    alarm_actions = ["arn:aws:sns:eu-west-1:123456789012:pager"]
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.this) == 6 && alltrue([for alarm in aws_cloudwatch_metric_alarm.this : alarm.alarm_actions == toset(["arn:aws:sns:eu-west-1:123456789012:pager"])])
    error_message = "every alarm notifies alarm_actions"
  }
}

run "roles_take_a_path_and_a_permissions_boundary" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    role_path                = "/security/responders/"
    permissions_boundary_arn = "arn:aws:iam::123456789012:policy/security-boundary"
  }

  assert {
    condition     = aws_iam_role.this.path == "/security/responders/" && aws_iam_role.this.permissions_boundary == "arn:aws:iam::123456789012:policy/security-boundary"
    error_message = "the function's role carries the path and the boundary"
  }
  assert {
    condition     = one([for statement in local.guard_statements : statement.Resource if statement.Sid == "NeverLoosenItsOwnPermissions"]) == "arn:aws:iam::123456789012:role/security/responders/guardduty-responder-eu-west-1" && contains(local.writers, "arn:aws:iam::123456789012:role/security/responders/guardduty-responder-eu-west-1")
    error_message = "the policies that name the role name it with its path"
  }
}

run "member_roles_take_a_path_and_a_permissions_boundary" {
  command = plan

  module {
    source = "./modules/member-role"
  }

  variables {
    responder_role_arns      = ["arn:aws:iam::123456789012:role/guardduty-responder-eu-west-1"]
    operator_role_arns       = ["arn:aws:iam::123456789012:role/incident-responders"]
    external_id              = "responder-7f3a"
    regions                  = ["eu-west-1"]
    role_path                = "/security/"
    permissions_boundary_arn = "arn:aws:iam::210987654321:policy/security-boundary"
  }

  assert {
    condition     = aws_iam_role.this.path == "/security/" && aws_iam_role.release[0].path == "/security/" && aws_iam_role.this.permissions_boundary == var.permissions_boundary_arn && aws_iam_role.release[0].permissions_boundary == var.permissions_boundary_arn
    error_message = "both roles carry the path and the boundary"
  }
}

run "the_function_s_own_settings" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    reserved_concurrency        = null
    log_level                   = "DEBUG"
    keep_log_group              = true
    secret_recovery_window_days = 0
  }

  assert {
    condition     = aws_lambda_function.this.reserved_concurrent_executions == -1
    error_message = "reserved_concurrency = null reserves none"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables.LOG_LEVEL == "DEBUG"
    error_message = "log_level reaches the function as LOG_LEVEL"
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.skip_destroy && aws_secretsmanager_secret.jira.recovery_window_in_days == 0
    error_message = "the log group is kept on destroy and the secret deleted at once, as asked"
  }
}

run "by_default_the_log_level_is_the_code_s_own" {
  command = plan

  module {
    source = "./modules/responder"
  }

  assert {
    condition     = !contains(keys(aws_lambda_function.this.environment[0].variables), "LOG_LEVEL") && aws_lambda_function.this.reserved_concurrent_executions == 10
    error_message = "without log_level the function logs at INFO, and 10 executions are reserved"
  }
}

run "a_jira_secret_given_to_terraform_goes_through_the_write_only_attribute" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    jira_secret_value   = "{\"url\": \"https://example.atlassian.net\", \"username\": \"responder@example.com\", \"api_token\": \"not-in-the-state\"}"
    jira_secret_version = 1
  }

  assert {
    condition     = aws_secretsmanager_secret_version.jira[0].secret_string_wo_version == 1 && aws_secretsmanager_secret_version.jira[0].secret_string == null
    error_message = "the value goes through secret_string_wo, never secret_string"
  }
}

run "a_jira_secret_without_its_version_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    jira_secret_value = "{\"url\": \"https://example.atlassian.net\", \"token\": \"t\"}"
  }

  expect_failures = [var.jira_secret_version]
}

run "reserving_no_execution_at_all_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    reserved_concurrency = 0
  }

  expect_failures = [var.reserved_concurrency]
}

run "a_recovery_window_secrets_manager_would_refuse_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    secret_recovery_window_days = 3
  }

  expect_failures = [var.secret_recovery_window_days]
}

run "a_subscription_protocol_sns_does_not_take_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    notification_subscriptions = { chat = { protocol = "slack", endpoint = "https://hooks.example.com/x" } }
  }

  expect_failures = [var.notification_subscriptions]
}

run "a_role_path_without_its_slashes_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    role_path = "security"
  }

  expect_failures = [var.role_path]
}

run "an_archive_built_in_another_folder_is_built_again" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    build_directory = "/srv/ci/build"
  }

  assert {
    condition     = terraform_data.function_archive.triggers_replace == local.function_zip && startswith(local.function_zip, "/srv/ci/build/function-")
    error_message = "the function's build is keyed by the archive's path, so another folder builds it again"
  }
  assert {
    condition     = terraform_data.layer_archive.triggers_replace == local.layer_zip && startswith(local.layer_zip, "/srv/ci/build/layer-arm64-")
    error_message = "the layer's build is keyed by the archive's path"
  }
}

run "at_the_root_s_own_folder_a_build_is_keyed_by_the_hash_as_before" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    build_directory = "./.build"
  }

  assert {
    condition     = terraform_data.function_archive.triggers_replace == jsondecode(file("lambda_code/archives.lock.json")).function && terraform_data.layer_archive.triggers_replace == jsondecode(file("lambda_code/archives.lock.json")).layer.arm64
    error_message = "the root module's builds keep the keys deployments before the module recorded"
  }
}

run "a_member_role_under_a_path_is_assumed_there" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    member_role_name        = "gd-member"
    member_role_path        = "/security/"
    member_role_external_id = "x-responder"
    organization_id         = "o-a1b2c3d4e5"
  }

  assert {
    condition     = one([for statement in local.member_account_statements : statement.Resource]) == "arn:aws:iam::*:role/security/gd-member" && aws_lambda_function.this.environment[0].variables.MEMBER_ROLE_PATH == "/security/"
    error_message = "the function may assume the member role at its path, and is told the path"
  }
}

run "member_role_trusts_each_deployment_with_its_own_tag" {
  command = plan

  module {
    source = "./modules/member-role"
  }

  variables {
    responder_role_arns = concat(
      [for region in ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "ca-central-1", "sa-east-1", "me-south-1", "af-south-1", "il-central-1", "ap-east-1", "mx-central-1", "eu-south-1", "ap-south-2", "ap-southeast-3", "ca-west-1", "us-gov-west-1"] : "arn:aws:iam::111111111111:role/security/incident-response/guardduty-responder-prod-${region}"],
      ["arn:aws:iam::222222222222:role/gd-test-eu-west-1"],
    )
    external_id = "responder-7f3a"
    regions     = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "ca-central-1", "sa-east-1", "me-south-1", "af-south-1", "il-central-1", "ap-east-1", "mx-central-1", "eu-south-1", "ap-south-2", "ap-southeast-3", "ca-west-1", "us-gov-west-1"]
  }

  assert {
    condition = toset([for statement in jsondecode(aws_iam_role.this.assume_role_policy).Statement : jsonencode([statement.Principal.AWS, statement.Condition.StringEquals["aws:PrincipalTag/guardduty-responder:deployment"], statement.Condition.ArnNotLike["aws:PrincipalArn"]])]) == toset([
      jsonencode(["arn:aws:iam::111111111111:root", "guardduty-responder-prod", "arn:aws:iam::111111111111:role/security/incident-response/guardduty-responder-prod-*/*"]),
      jsonencode(["arn:aws:iam::222222222222:root", "gd-test", "arn:aws:iam::222222222222:role/gd-test-*/*"]),
    ])
    error_message = "each deployment has its own statement: its account, its tag, its path"
  }
  assert {
    condition     = output.responder_trust_by == "patterns" && length(aws_iam_role.this.assume_role_policy) <= 2048
    error_message = "twenty-seven roles under a long path are too many to name; the patterns fit"
  }
  assert {
    condition     = [for statement in jsondecode(aws_iam_role.this.assume_role_policy).Statement : statement.Condition.ArnLike["aws:PrincipalArn"] if statement.Principal.AWS == "arn:aws:iam::222222222222:root"] == [["arn:aws:iam::222222222222:role/gd-test-eu-*"]]
    error_message = "the test deployment's roles only, of its own regions"
  }
}

run "a_jira_secret_version_without_its_value_is_refused" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    jira_secret_version = 2
  }

  expect_failures = [var.jira_secret_version]
}

run "an_archive_or_layers_given_are_keyed_apart_from_a_build" {
  command = plan

  module {
    source = "./modules/responder"
  }

  variables {
    build_directory = "./.build"
    layer_arns      = ["arn:aws:lambda:eu-west-1:123456789012:layer:shared-jira-client:7"]
  }

  assert {
    condition     = terraform_data.layer_archive.triggers_replace == "given: layers"
    error_message = "layers given are keyed apart: building the layer again when they are no longer given runs the build"
  }
}
