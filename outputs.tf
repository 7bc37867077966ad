# The root module's outputs: modules/responder's, as they are.

output "function_name" {
  description = "Name of the responder Lambda function."
  value       = module.responder.function_name
}

output "function_arn" {
  description = "ARN of the responder Lambda function."
  value       = module.responder.function_arn
}

output "rule_name" {
  description = "Name of the EventBridge rule that passes GuardDuty EC2 findings to the function."
  value       = module.responder.rule_name
}

output "rule_arn" {
  description = "ARN of the EventBridge rule."
  value       = module.responder.rule_arn
}

output "sweep_rule_arn" {
  description = "ARN of the EventBridge schedule that runs the sweep."
  value       = module.responder.sweep_rule_arn
}

output "table_name" {
  description = "DynamoDB table of the ledger (RESPONDER_TABLE for the command line)."
  value       = module.responder.table_name
}

output "table_arn" {
  description = "ARN of the ledger table (for the operators' and approvers' policies)."
  value       = module.responder.table_arn
}

output "topic_arn" {
  description = "SNS topic of the notifications and alarms (RESPONDER_TOPIC_ARN for the command line)."
  value       = module.responder.topic_arn
}

output "failed_findings_queue_url" {
  description = "SQS queue holding findings the function failed on after its retries, with the error."
  value       = module.responder.failed_findings_queue_url
}

output "failed_findings_queue_arn" {
  description = "ARN of the failed-findings queue."
  value       = module.responder.failed_findings_queue_arn
}

output "undelivered_findings_queue_url" {
  description = "SQS queue holding findings EventBridge could not deliver to the function."
  value       = module.responder.undelivered_findings_queue_url
}

output "undelivered_findings_queue_arn" {
  description = "ARN of the undelivered-findings queue."
  value       = module.responder.undelivered_findings_queue_arn
}

output "log_group_name" {
  description = "CloudWatch Logs group of the function's log lines."
  value       = module.responder.log_group_name
}

output "log_group_arn" {
  description = "ARN of the function's log group."
  value       = module.responder.log_group_arn
}

output "layer_arns" {
  description = "Layer versions the function runs with: the one published from this checkout, or those given in layer_arns."
  value       = module.responder.layer_arns
}

output "alarm_arns" {
  description = "ARNs of the deployment's CloudWatch alarms, by name (empty with create_alarms = false)."
  value       = module.responder.alarm_arns
}

output "jira_secret_arn" {
  description = "Secrets Manager secret to fill with the Jira credentials (JIRA_SECRET_ARN)."
  value       = module.responder.jira_secret_arn
}

output "role_arn" {
  description = "IAM role of the function."
  value       = module.responder.role_arn
}

output "role_name" {
  description = "Name of the function's IAM role."
  value       = module.responder.role_name
}

output "kms_key_arn" {
  description = "KMS key encrypting the ledger, topic, queues, secret and logs."
  value       = module.responder.kms_key_arn
}

output "member_role_trust" {
  description = "What modules/member-role needs in each member account to trust this deployment: responder_role_arn (one of its responder_role_arns), member_role_name (its role_name), external_id, and member_role_path (its role_path) when it is not /."
  value       = module.responder.member_role_trust
}

output "approver_policy_json" {
  description = "An IAM policy to attach to the roles that approve or reject isolations (guardduty-responder approve, reject): it allows writing a finding's approval item (DynamoDB UpdateItem, keys approval#*, the decision's attributes) and nothing else of the ledger."
  value       = module.responder.approver_policy_json
}

output "evidence_bucket_name" {
  description = "The evidence bucket (S3 Object Lock): one prefix per incident under incidents/, with a manifest of SHA-256 hashes."
  value       = module.responder.evidence_bucket_name
}

output "evidence_bucket_arn" {
  description = "ARN of the evidence bucket."
  value       = module.responder.evidence_bucket_arn
}
