# The deployment as most teams run it: one region, from the shell's credentials. Everything it creates is
# modules/responder's; to compose it (every region in one plan, a provider of your own), call that module instead
# (examples/).

terraform {
  required_version = ">= 1.11" # modules/responder's

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }
}

# Credentials, region and endpoints come from the environment (AWS_PROFILE, AWS_REGION,
# AWS_ENDPOINT_URL), so one root module serves every account and region it is applied to.
provider "aws" {
  default_tags {
    tags = merge(var.tags, { "guardduty-responder:deployment" = var.name_prefix })
  }
}

# A workspace named like a region (the README's loop over regions) must be applied in that region: a state kept for
# eu-west-1 never silently deploys, or destroys, in another.
data "aws_region" "current" {
  lifecycle {
    postcondition {
      condition     = !can(regex("^[a-z]{2,4}(-[a-z]+)+-[0-9]+$", terraform.workspace)) || terraform.workspace == self.name
      error_message = "The workspace \"${terraform.workspace}\" is named for a region, but the provider's region is ${self.name}: select the workspace of ${self.name} (terraform workspace select ${self.name}), or set AWS_REGION=${terraform.workspace}."
    }
  }
}

module "responder" {
  source = "./modules/responder"

  # The archives are built in .build/ of this checkout.
  build_directory             = "${path.module}/.build"
  name_prefix                 = var.name_prefix
  tags                        = var.tags
  min_severity                = var.min_severity
  finding_type_prefixes       = var.finding_type_prefixes
  jira_project_key            = var.jira_project_key
  jira_issue_type             = var.jira_issue_type
  jira_url                    = var.jira_url
  jira_secret_value           = var.jira_secret_value
  jira_secret_version         = var.jira_secret_version
  notification_emails         = var.notification_emails
  dry_run                     = var.dry_run
  exempt_tag_key              = var.exempt_tag_key
  max_isolations_per_hour     = var.max_isolations_per_hour
  isolation_pause_seconds     = var.isolation_pause_seconds
  architecture                = var.architecture
  function_timeout_seconds    = var.function_timeout_seconds
  function_memory_mb          = var.function_memory_mb
  reserved_concurrency        = var.reserved_concurrency
  jira_timeout_seconds        = var.jira_timeout_seconds
  log_level                   = var.log_level
  keep_log_group              = var.keep_log_group
  log_retention_days          = var.log_retention_days
  record_retention_days       = var.record_retention_days
  deletion_protection         = var.deletion_protection
  credential_findings         = var.credential_findings
  contain_identity            = var.contain_identity
  credential_revocation       = var.credential_revocation
  disable_instance_metadata   = var.disable_instance_metadata
  protected_role_names        = var.protected_role_names
  snapshot_lock_days          = var.snapshot_lock_days
  evidence_bucket_name        = var.evidence_bucket_name
  existing_evidence_bucket    = var.existing_evidence_bucket
  evidence_retention_days     = var.evidence_retention_days
  evidence_lock_mode          = var.evidence_lock_mode
  evidence_access_log_bucket  = var.evidence_access_log_bucket
  evidence_access_log_prefix  = var.evidence_access_log_prefix
  malware_scan                = var.malware_scan
  response_rules              = var.response_rules
  guardduty_detector_id       = var.guardduty_detector_id
  sweep_interval_minutes      = var.sweep_interval_minutes
  unfinished_alarm_minutes    = var.unfinished_alarm_minutes
  member_role_name            = var.member_role_name
  member_role_path            = var.member_role_path
  member_role_external_id     = var.member_role_external_id
  organization_id             = var.organization_id
  operator_role_arns          = var.operator_role_arns
  approver_role_arns          = var.approver_role_arns
  jira_approval_status        = var.jira_approval_status
  role_path                   = var.role_path
  permissions_boundary_arn    = var.permissions_boundary_arn
  kms_key_arn                 = var.kms_key_arn
  sns_topic_arn               = var.sns_topic_arn
  notification_subscriptions  = var.notification_subscriptions
  create_alarms               = var.create_alarms
  alarm_actions               = var.alarm_actions
  secret_recovery_window_days = var.secret_recovery_window_days
  build_python                = var.build_python
  function_archive            = var.function_archive
  layer_archive               = var.layer_archive
  layer_arns                  = var.layer_arns
}

# A deployment made before the module existed keeps every resource: the same objects, at their new addresses.
moved {
  from = aws_cloudwatch_event_rule.this
  to   = module.responder.aws_cloudwatch_event_rule.this
}

moved {
  from = aws_cloudwatch_event_target.this
  to   = module.responder.aws_cloudwatch_event_target.this
}

moved {
  from = terraform_data.function_archive
  to   = module.responder.terraform_data.function_archive
}

moved {
  from = terraform_data.layer_archive
  to   = module.responder.terraform_data.layer_archive
}

moved {
  from = aws_lambda_layer_version.dependencies
  to   = module.responder.aws_lambda_layer_version.dependencies[0]
}

moved {
  from = aws_cloudwatch_log_group.this
  to   = module.responder.aws_cloudwatch_log_group.this
}

moved {
  from = aws_lambda_function.this
  to   = module.responder.aws_lambda_function.this
}

moved {
  from = aws_lambda_function_event_invoke_config.this
  to   = module.responder.aws_lambda_function_event_invoke_config.this
}

moved {
  from = aws_lambda_permission.events
  to   = module.responder.aws_lambda_permission.events
}

moved {
  from = aws_cloudwatch_event_rule.sweep
  to   = module.responder.aws_cloudwatch_event_rule.sweep
}

moved {
  from = aws_cloudwatch_event_target.sweep
  to   = module.responder.aws_cloudwatch_event_target.sweep
}

moved {
  from = aws_lambda_permission.sweep
  to   = module.responder.aws_lambda_permission.sweep
}

moved {
  from = aws_dynamodb_table.this
  to   = module.responder.aws_dynamodb_table.this
}

moved {
  from = aws_dynamodb_resource_policy.ledger
  to   = module.responder.aws_dynamodb_resource_policy.ledger
}

moved {
  from = aws_sns_topic.this
  to   = module.responder.aws_sns_topic.this[0]
}

moved {
  from = aws_sns_topic_policy.this
  to   = module.responder.aws_sns_topic_policy.this[0]
}

moved {
  from = aws_sns_topic_subscription.email
  to   = module.responder.aws_sns_topic_subscription.email
}

moved {
  from = aws_sqs_queue.failed
  to   = module.responder.aws_sqs_queue.failed
}

moved {
  from = aws_sqs_queue.undelivered
  to   = module.responder.aws_sqs_queue.undelivered
}

moved {
  from = aws_sqs_queue_policy.undelivered
  to   = module.responder.aws_sqs_queue_policy.undelivered
}

moved {
  from = aws_cloudwatch_log_metric_filter.critical
  to   = module.responder.aws_cloudwatch_log_metric_filter.critical
}

moved {
  from = aws_cloudwatch_log_metric_filter.unfinished
  to   = module.responder.aws_cloudwatch_log_metric_filter.unfinished
}

moved {
  from = aws_cloudwatch_metric_alarm.this
  to   = module.responder.aws_cloudwatch_metric_alarm.this
}

moved {
  from = aws_secretsmanager_secret.jira
  to   = module.responder.aws_secretsmanager_secret.jira
}

moved {
  from = aws_secretsmanager_secret_version.jira
  to   = module.responder.aws_secretsmanager_secret_version.jira
}

moved {
  from = aws_kms_key.this
  to   = module.responder.aws_kms_key.this[0]
}

moved {
  from = aws_kms_alias.this
  to   = module.responder.aws_kms_alias.this[0]
}

moved {
  from = aws_iam_role.this
  to   = module.responder.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.this
  to   = module.responder.aws_iam_role_policy.this
}
