output "function_name" {
  description = "Name of the responder Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the responder Lambda function."
  value       = aws_lambda_function.this.arn
}

output "rule_name" {
  description = "Name of the EventBridge rule that passes GuardDuty EC2 findings to the function."
  value       = aws_cloudwatch_event_rule.this.name
}

output "rule_arn" {
  description = "ARN of the EventBridge rule."
  value       = aws_cloudwatch_event_rule.this.arn
}

output "sweep_rule_arn" {
  description = "ARN of the EventBridge schedule that runs the sweep."
  value       = aws_cloudwatch_event_rule.sweep.arn
}

output "table_name" {
  description = "DynamoDB table of the ledger (RESPONDER_TABLE for the command line)."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the ledger table (for the operators' and approvers' policies)."
  value       = aws_dynamodb_table.this.arn
}

output "topic_arn" {
  description = "SNS topic of the notifications and alarms (RESPONDER_TOPIC_ARN for the command line)."
  value       = local.topic
}

output "failed_findings_queue_url" {
  description = "SQS queue holding findings the function failed on after its retries, with the error."
  value       = aws_sqs_queue.failed.url
}

output "failed_findings_queue_arn" {
  description = "ARN of the failed-findings queue."
  value       = aws_sqs_queue.failed.arn
}

output "undelivered_findings_queue_url" {
  description = "SQS queue holding findings EventBridge could not deliver to the function."
  value       = aws_sqs_queue.undelivered.url
}

output "undelivered_findings_queue_arn" {
  description = "ARN of the undelivered-findings queue."
  value       = aws_sqs_queue.undelivered.arn
}

output "log_group_name" {
  description = "CloudWatch Logs group of the function's log lines."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the function's log group."
  value       = aws_cloudwatch_log_group.this.arn
}

output "layer_arns" {
  description = "Layer versions the function runs with: the one published from this checkout, or those given in layer_arns."
  value       = aws_lambda_function.this.layers
}

output "alarm_arns" {
  description = "ARNs of the deployment's CloudWatch alarms, by name (empty with create_alarms = false)."
  value       = { for key, alarm in aws_cloudwatch_metric_alarm.this : key => alarm.arn }
}

output "jira_secret_arn" {
  description = "Secrets Manager secret to fill with the Jira credentials (JIRA_SECRET_ARN)."
  value       = aws_secretsmanager_secret.jira.arn
}

output "role_arn" {
  description = "IAM role of the function."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's IAM role."
  value       = aws_iam_role.this.name
}

output "kms_key_arn" {
  description = "KMS key encrypting the ledger, topic, queues, secret and logs."
  value       = local.kms_key_arn
}

output "member_role_trust" {
  description = "What modules/member-role needs in each member account to trust this deployment: responder_role_arn (one of its responder_role_arns), member_role_name (its role_name), external_id, and member_role_path (its role_path) when it is not /."
  # Shown on purpose: an external id is no secret (any reader of the member role's trust policy sees it).
  sensitive = false
  value = merge({
    responder_role_arn = aws_iam_role.this.arn
    member_role_name   = var.member_role_name
    external_id        = var.member_role_external_id
  }, var.member_role_path == "/" ? {} : { member_role_path = var.member_role_path })
}

output "approver_policy_json" {
  description = "An IAM policy to attach to the roles that approve or reject isolations (guardduty-responder approve, reject): it allows writing a finding's approval item (DynamoDB UpdateItem, keys approval#*, the decision's attributes) and nothing else of the ledger."
  value       = jsonencode(local.approver_policy)
}

output "evidence_bucket_name" {
  description = "The evidence bucket (S3 Object Lock): one prefix per incident under incidents/, with a manifest of SHA-256 hashes."
  value       = local.evidence_bucket_name
}

output "evidence_bucket_arn" {
  description = "ARN of the evidence bucket."
  value       = local.evidence_bucket_arn
}
