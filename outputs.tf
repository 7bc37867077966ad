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

output "table_name" {
  description = "DynamoDB table of the ledger (RESPONDER_TABLE for the command line)."
  value       = aws_dynamodb_table.this.name
}

output "topic_arn" {
  description = "SNS topic of the notifications and alarms (RESPONDER_TOPIC_ARN for the command line)."
  value       = aws_sns_topic.this.arn
}

output "failed_findings_queue_url" {
  description = "SQS queue holding findings the function failed on after its retries, with the error."
  value       = aws_sqs_queue.failed.url
}

output "undelivered_findings_queue_url" {
  description = "SQS queue holding findings EventBridge could not deliver to the function."
  value       = aws_sqs_queue.undelivered.url
}

output "jira_secret_arn" {
  description = "Secrets Manager secret to fill with the Jira credentials (JIRA_SECRET_ARN)."
  value       = aws_secretsmanager_secret.jira.arn
}

output "role_arn" {
  description = "IAM role of the function."
  value       = aws_iam_role.this.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting the ledger, topic, queues, secret and logs."
  value       = aws_kms_key.this.arn
}

output "member_role_trust" {
  description = "What modules/member-role needs in each member account to trust this deployment: responder_role_arn (one of its responder_role_arns), member_role_name (its role_name) and external_id."
  # Shown on purpose: an external id is no secret (any reader of the member role's trust policy sees it).
  sensitive = false
  value = {
    responder_role_arn = aws_iam_role.this.arn
    member_role_name   = var.member_role_name
    external_id        = var.member_role_external_id
  }
}
