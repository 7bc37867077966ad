# Plan-only checks of the root module with a mocked provider: no account, no network.
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
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail.resource.resourceType == ["Instance"]
    error_message = "the rule must match EC2 instance findings only"
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail.severity == [{ numeric = [">=", 7] }]
    error_message = "the rule must compare the severity numerically with the minimum"
  }
  assert {
    condition     = !contains(keys(jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail), "type")
    error_message = "with no prefixes the rule must pass every finding type"
  }
}

run "finding_type_prefixes_narrow_the_rule" {
  command = plan

  variables {
    finding_type_prefixes = ["Backdoor:EC2/", "CryptoCurrency:EC2/"]
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).detail.type == [{ prefix = "Backdoor:EC2/" }, { prefix = "CryptoCurrency:EC2/" }]
    error_message = "each finding type prefix must become a prefix match"
  }
}

run "rule_target_retries_and_dead_letters" {
  command = plan

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

run "role_grants_what_the_code_calls_and_no_more" {
  command = plan

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
      "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem",
      "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateSecurityGroup",
      "ec2:CreateSnapshots", "ec2:CreateTags", "ec2:DescribeInstances", "ec2:DescribeSecurityGroups",
      "ec2:DescribeSnapshots", "ec2:ModifyInstanceAttribute", "ec2:ModifyNetworkInterfaceAttribute",
      "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
      "elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
      "secretsmanager:GetSecretValue", "sns:Publish",
    ])
    error_message = "the role's actions must be exactly the code's (see guardduty_responder.permissions)"
  }
  assert {
    condition = alltrue(flatten([for statement in local.responder_statements : [
      for resource in flatten([statement.Resource]) : startswith(resource, "arn:aws:") && strcontains(resource, "eu-west-1")
    ] if statement.Sid != "ReadTheEstate"]))
    error_message = "every statement but the read-only Describe* one must be scoped to ARNs of the deployment's region"
  }
}

run "only_the_rule_may_invoke_the_function" {
  command = plan

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

run "a_severity_outside_the_scale_is_refused" {
  command = plan

  variables {
    min_severity = 11
  }

  expect_failures = [var.min_severity]
}

run "a_bad_email_is_refused" {
  command = plan

  variables {
    notification_emails = ["not-an-address"]
  }

  expect_failures = [var.notification_emails]
}

run "a_plain_http_jira_url_is_refused" {
  command = plan

  variables {
    jira_url = "http://jira.example.com"
  }

  expect_failures = [var.jira_url]
}

run "a_pause_longer_than_a_quarter_of_the_timeout_is_refused" {
  command = plan

  variables {
    function_timeout_seconds = 120
    isolation_pause_seconds  = 60
  }

  expect_failures = [var.isolation_pause_seconds]
}
