data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

data "aws_default_tags" "current" {}

locals {
  name       = var.name_prefix
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  tags = merge(var.tags, {
    "guardduty-responder:deployment" = var.name_prefix
  })
  # Every taggable resource carries local.tags: those the caller's provider already adds as default_tags, with the
  # same value, are left to it (the provider refuses nothing, but a tag in both places is a change in every plan of a
  # deployment made before the module took tags). null rather than {}: the same plan as a resource without tags.
  resource_tags = {
    for key, value in local.tags : key => value
    if lookup(data.aws_default_tags.current.tags, key, null) != value
  }
  tags_argument = length(local.resource_tags) == 0 ? null : local.resource_tags

  # The archives' own SHA-256, as `make lock` recorded them (lambda_code/archives.lock.json): known at plan on
  # a fresh clone, where no archive exists yet, and deployed as source_code_hash, so a different archive is a
  # change in the plan. The builder makes an archive byte for byte the same on any machine, and refuses one
  # whose hash is not the locked one. Each archive is named after its hash. An archive given (built in CI with
  # the same builder) must be the locked one too; existing layers given by ARN are deployed as they are.
  code_dir      = "${path.module}/../../lambda_code"
  build_dir     = coalesce(var.build_directory, "${path.module}/../../.build")
  builder       = "${local.code_dir}/build_archives.py"
  archives_lock = jsondecode(file("${local.code_dir}/archives.lock.json"))
  function_hash = local.archives_lock.function
  layer_hash    = local.archives_lock.layer[var.architecture]
  build_layer   = var.layer_arns == null
  function_zip  = coalesce(var.function_archive, "${local.build_dir}/function-${substr(replace(local.function_hash, "/[^A-Za-z0-9]/", ""), 0, 24)}.zip")
  layer_zip     = coalesce(var.layer_archive, "${local.build_dir}/layer-${var.architecture}-${substr(replace(local.layer_hash, "/[^A-Za-z0-9]/", ""), 0, 24)}.zip")
  # The builder runs with `python3`, or `python` on Windows (a checkout whose absolute path starts with a drive
  # letter), where `python3` is at best the Store's installer.
  python = coalesce(var.build_python, can(regex("^[A-Za-z]:", abspath(path.root))) ? "python" : "python3")
  # `echo` in place of a build: the same in a Unix shell and in Windows' cmd.
  build_commands = {
    function = var.function_archive != null ? "echo The function archive is given: ${local.function_zip}" : "${local.python} \"${local.builder}\" function \"${local.function_zip}\""
    layer    = !local.build_layer ? "echo The layers are given: ${try(join(", ", var.layer_arns), "")}" : var.layer_archive != null ? "echo The layer archive is given: ${local.layer_zip}" : "${local.python} \"${local.builder}\" layer \"${local.layer_zip}\" --architecture ${var.architecture}"
  }
  # What a build is for: its archive at its path (the file's name carries the hash), so that another folder (another
  # build_directory, the module called from elsewhere) builds again. At the root module's own .build the key is the
  # hash alone, as deployments of the root before this module recorded it, so that they carry over unchanged.
  # An archive or layers given are keyed apart, so that building one again when they are no longer given runs.
  build_keys = {
    function = var.function_archive != null ? "given: ${local.function_zip}" : local.function_zip == "./.build/${basename(local.function_zip)}" ? local.function_hash : local.function_zip
    layer    = !local.build_layer ? "given: layers" : var.layer_archive != null ? "given: ${local.layer_zip}" : local.layer_zip == "./.build/${basename(local.layer_zip)}" ? local.layer_hash : local.layer_zip
  }
  log_group_name = "/aws/lambda/${local.name}"
  # Metrics the function's own log lines give (metric filters on its log group).
  metric_namespace = "GuardDutyResponder/${local.name}"

  # Built from names, not read from the resources, so that the resource policies naming them are known at
  # plan (a reviewer sees them whole) and the role's guard can name the function the role belongs to.
  arn_prefix   = "arn:${local.partition}"
  function_arn = "${local.arn_prefix}:lambda:${local.region}:${local.account_id}:function:${local.name}"
  topic_arn    = "${local.arn_prefix}:sns:${local.region}:${local.account_id}:${local.name}-notifications"
  table_arn    = "${local.arn_prefix}:dynamodb:${local.region}:${local.account_id}:table/${local.name}-ledger"
  # Every alarm of this deployment (local.alarms) is named "<prefix>-<key>".
  alarm_arns = "${local.arn_prefix}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.name}-*"
  # Who may write the ledger and publish: the function's role, and the people who run the command line.
  responder_role_arn = "${local.arn_prefix}:iam::${local.account_id}:role${var.role_path}${local.role_name}"
  writers            = concat([local.responder_role_arn], var.operator_role_arns)
  # Every action that writes items: the item writes, their batch form and PartiQL's.
  ledger_writes = [
    "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PartiQLDelete", "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate", "dynamodb:PutItem", "dynamodb:UpdateItem",
  ]
  # Approvers who are not operators may write approval items (keys "approval#<finding id>") and nothing else.
  approvers = [for arn in var.approver_role_arns : arn if !contains(local.writers, arn)]
  # What an approval writes (guardduty_responder.ledger.Ledger.decide_approval), besides the key.
  approval_attributes = ["pk", "state", "decided_by", "decided_arn", "decided_at", "reason"]
  approver_policy = {
    Version = "2012-10-17"
    Statement = [{
      Sid      = "DecideOnApprovals"
      Effect   = "Allow"
      Action   = ["dynamodb:UpdateItem"]
      Resource = local.table_arn
      Condition = {
        "ForAllValues:StringLike"   = { "dynamodb:LeadingKeys" = ["approval#*"] }
        "ForAllValues:StringEquals" = { "dynamodb:Attributes" = local.approval_attributes }
      }
    }]
  }
}

# ---------------------------------------------------------------------------------------------
# The rule: GuardDuty findings about EC2 instances, and (unless ignored) about credentials taken
# from an instance and used elsewhere, at or above the minimum severity.
# ---------------------------------------------------------------------------------------------

locals {
  instance_findings = merge(
    { resource = { resourceType = ["Instance"] } },
    length(var.finding_type_prefixes) == 0 ? {} : {
      type = [for prefix in var.finding_type_prefixes : { prefix = prefix }]
    },
  )
  # These name the access key, not the instance: the instance is found from the key's session.
  exfiltrated_credential_findings = {
    resource = { resourceType = ["AccessKey"] }
    type     = [{ prefix = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration" }]
  }
  at_least_severity = { severity = [{ numeric = [">=", var.min_severity] }] }
  # Extended Threat Detection's groups of EC2 instances (an attack sequence naming them): like credential findings,
  # whatever finding_type_prefixes says.
  instance_group_findings = {
    resource = { resourceType = ["AttackSequence"] }
    type     = [{ prefix = "AttackSequence:EC2/" }]
  }

  # Runtime Monitoring and Malware Protection findings about a container or cluster name the EC2
  # instance it runs on; without one (Fargate, an EKS audit finding) there is nothing to act on.
  container_host_findings = merge(
    { resource = { resourceType = ["Container", "ECSCluster", "EKSCluster"], instanceDetails = { instanceId = [{ exists = true }] } } },
    length(var.finding_type_prefixes) == 0 ? {} : {
      type = [for prefix in var.finding_type_prefixes : { prefix = prefix }]
    },
  )

  # The shapes have different types, so the list is built by key rather than by a conditional.
  event_pattern = {
    source        = ["aws.guardduty"]
    "detail-type" = ["GuardDuty Finding"]
    detail = merge(local.at_least_severity, {
      "$or" = {
        without_credentials = [local.instance_findings, local.container_host_findings, local.instance_group_findings]
        with_credentials    = [local.instance_findings, local.container_host_findings, local.instance_group_findings, local.exfiltrated_credential_findings]
      }[var.credential_findings == "ignore" ? "without_credentials" : "with_credentials"]
    })
  }

  # The response rules the function applies (RESPONSE_RULES); the default matches the code's own
  # (guardduty_responder.rules.default_rules), built from credential_findings.
  default_response_rules = [
    {
      name                = "instance-credentials"
      action              = { contain = "isolate", ignore = "ignore", report = "report" }[var.credential_findings]
      finding_type_prefix = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"
      min_severity        = 0
      involvement         = "any"
      resource_types      = []
      instance_tags       = {}
    },
    {
      name                = "container-hosts"
      action              = "report"
      finding_type_prefix = ""
      min_severity        = 0
      involvement         = "any"
      resource_types      = ["Container", "ECSCluster", "EKSCluster"]
      instance_tags       = {}
    },
    {
      name                = "approve-instance-groups"
      action              = "approve"
      finding_type_prefix = ""
      min_severity        = 0
      involvement         = "any"
      resource_types      = ["AttackSequence"]
      instance_tags       = {}
    },
    {
      name                = "isolate-implicated"
      action              = "isolate"
      finding_type_prefix = ""
      min_severity        = 7
      involvement         = "implicated"
      resource_types      = []
      instance_tags       = {}
    },
    {
      name                = "approve-implicated"
      action              = "approve"
      finding_type_prefix = ""
      min_severity        = 4
      involvement         = "implicated"
      resource_types      = []
      instance_tags       = {}
    },
    {
      name                = "report-attacked"
      action              = "report"
      finding_type_prefix = ""
      min_severity        = 0
      involvement         = "attacked"
      resource_types      = []
      instance_tags       = {}
    },
  ]
  response_rules_json = var.response_rules == null ? jsonencode(local.default_response_rules) : jsonencode(var.response_rules)
}

resource "aws_cloudwatch_event_rule" "this" {
  name          = "${local.name}-findings"
  description   = "GuardDuty EC2 instance and instance credential findings for the responder"
  event_pattern = jsonencode(local.event_pattern)
  tags          = local.tags_argument
}

resource "aws_cloudwatch_event_target" "this" {
  rule      = aws_cloudwatch_event_rule.this.name
  target_id = "responder"
  arn       = aws_lambda_function.this.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }

  dead_letter_config {
    arn = aws_sqs_queue.undelivered.arn
  }
}

# ---------------------------------------------------------------------------------------------
# The function and its layer, built on apply from this repository.
# ---------------------------------------------------------------------------------------------

# Each builds its archive, or finds it already built, and fails the apply when the result is not the locked one.
# Lambda reads an archive whenever it takes code: a new hash, and also a new function or layer (another name, another
# architecture) with the same hash, on a checkout that never built it (a fresh clone, a new CI runner). So a build
# runs again whenever what it feeds is replaced: the layer (its name, architecture or hash), or the log group (the
# function's name). The builder finds an archive already there and only checks it. An archive given is not built.
resource "terraform_data" "function_archive" {
  triggers_replace = local.build_keys.function

  provisioner "local-exec" {
    command = local.build_commands.function
  }

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [aws_cloudwatch_log_group.this.name, terraform_data.layer_archive]
  }
}

resource "terraform_data" "layer_archive" {
  triggers_replace = local.build_keys.layer

  provisioner "local-exec" {
    command = local.build_commands.layer
  }

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [aws_cloudwatch_log_group.this.name]
  }
}

resource "aws_lambda_layer_version" "dependencies" {
  count                    = local.build_layer ? 1 : 0
  layer_name               = "${local.name}-dependencies"
  description              = "atlassian-python-api and its dependencies"
  filename                 = local.layer_zip
  source_code_hash         = local.layer_hash
  compatible_runtimes      = ["python3.13"]
  compatible_architectures = [var.architecture]

  lifecycle {
    # A new version exists before the old one goes, so the function always has one.
    create_before_destroy = true
    precondition {
      condition     = fileexists(local.layer_zip) ? filebase64sha256(local.layer_zip) == local.layer_hash : var.layer_archive == null
      error_message = var.layer_archive == null ? "${local.layer_zip} is not the ${var.architecture} layer archive lambda_code/archives.lock.json names (${local.layer_hash}): delete it to have it rebuilt, or run `make lock` if layer-requirements.txt changed." : "layer_archive ${local.layer_zip} ${fileexists(local.layer_zip) ? "is not the ${var.architecture} layer archive lambda_code/archives.lock.json names (${local.layer_hash}): build it from this checkout with `python3 lambda_code/build_archives.py layer OUT.zip --architecture ${var.architecture}`" : "does not exist"}."
    }
    postcondition {
      condition     = self.code_sha256 == local.layer_hash
      error_message = "Lambda holds a layer whose SHA-256 (${self.code_sha256}) is not the locked ${local.layer_hash}."
    }
  }

  depends_on = [terraform_data.layer_archive]
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  skip_destroy      = var.keep_log_group
  tags              = local.tags_argument
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:Accepted: the function can open connections to any internet host, so code running in it could send what it reads (the Jira token, findings) anywhere. It must reach AWS APIs and the Jira site; a VPC would add NAT or endpoints, and only an egress proxy would bound the hosts. The code that runs is the locked, reviewed archive.
  #checkov:skip=CKV_AWS_116:Accepted: no dead-letter queue on the function. Failed invocations go to the on-failure destination (aws_lambda_function_event_invoke_config), which carries the error as well as the event; a dead-letter queue as well would receive each failure twice. An event is lost only if the destination queue itself cannot be written (deleted, key disabled), which the function-errors alarm shows.
  #checkov:skip=CKV_AWS_272:Accepted: Lambda verifies no signature, so whoever may call lambda:UpdateFunctionCode can deploy other code (README, Threat model, gives the SCP that keeps it to the deployment role). Code signing needs a signing profile and signed uploads, which a terraform apply from a clone cannot produce; instead the archive's SHA-256 is locked in the repository, in the plan, and checked after apply.
  function_name                  = local.name
  description                    = "Contains, preserves and reports EC2 instances named in GuardDuty findings"
  role                           = aws_iam_role.this.arn
  runtime                        = "python3.13"
  architectures                  = [var.architecture]
  handler                        = "guardduty_responder.handler.lambda_handler"
  filename                       = local.function_zip
  source_code_hash               = local.function_hash
  layers                         = local.build_layer ? [aws_lambda_layer_version.dependencies[0].arn] : var.layer_arns
  timeout                        = var.function_timeout_seconds
  memory_size                    = var.function_memory_mb
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency # -1: none reserved
  kms_key_arn                    = local.kms_key_arn
  tags                           = local.tags_argument

  environment {
    variables = merge({
      RESPONDER_TABLE         = aws_dynamodb_table.this.name
      RESPONDER_TOPIC_ARN     = local.topic
      JIRA_SECRET_ARN         = aws_secretsmanager_secret.jira.arn
      JIRA_PROJECT_KEY        = var.jira_project_key
      JIRA_ISSUE_TYPE         = var.jira_issue_type
      JIRA_TIMEOUT_SECONDS    = tostring(var.jira_timeout_seconds)
      DRY_RUN                 = tostring(var.dry_run)
      EXEMPT_TAG_KEY          = var.exempt_tag_key == null ? "" : var.exempt_tag_key # empty: the tag exemption is off
      MAX_ISOLATIONS_PER_HOUR = tostring(var.max_isolations_per_hour)
      ISOLATION_PAUSE_SECONDS = tostring(var.isolation_pause_seconds)
      RECORD_RETENTION_DAYS   = tostring(var.record_retention_days)
      RESPONDER_ACCOUNT_ID    = local.account_id
      MEMBER_ROLE_NAME        = var.member_role_name == null ? "" : var.member_role_name
      MEMBER_ROLE_EXTERNAL_ID = var.member_role_external_id == null ? "" : var.member_role_external_id
      CREDENTIAL_FINDINGS     = var.credential_findings
      # Identity containment, and the roles never written (the function's own besides those listed).
      CONTAIN_IDENTITY          = tostring(var.contain_identity)
      CREDENTIAL_REVOCATION     = var.credential_revocation
      DISABLE_INSTANCE_METADATA = tostring(var.disable_instance_metadata)
      RESPONDER_ROLE_NAME       = local.role_name
      PROTECTED_ROLE_NAMES      = join(",", var.protected_role_names)
      RESPONSE_RULES            = local.response_rules_json
      # The rule's own scope, applied again to GuardDuty's copy of a finding (a replayed one included).
      MIN_SEVERITY          = tostring(var.min_severity)
      FINDING_TYPE_PREFIXES = join(",", var.finding_type_prefixes)
      GUARDDUTY_DETECTOR_ID = var.guardduty_detector_id == null ? "" : var.guardduty_detector_id
      # A finding the sweep finds unfinished this long after its claim is logged for its alarm.
      UNFINISHED_ALARM_MINUTES = tostring(var.unfinished_alarm_minutes)
      EVIDENCE_BUCKET          = local.evidence_bucket_name
      # Unset: the code's own level, INFO; the member role at the top of IAM's paths.
      }, var.log_level == null ? {} : { LOG_LEVEL = var.log_level }, var.member_role_path == "/" ? {} : { MEMBER_ROLE_PATH = var.member_role_path },
      var.jira_approval_status == null ? {} : { JIRA_APPROVAL_STATUS = var.jira_approval_status },
    var.snapshot_lock_days == 0 ? {} : { SNAPSHOT_LOCK_DAYS = tostring(var.snapshot_lock_days) }, var.malware_scan ? { MALWARE_SCAN = "true" } : {})
  }

  tracing_config {
    mode = "Active"
  }

  lifecycle {
    # A new function (another name) exists before the old one goes.
    create_before_destroy = true
    precondition {
      condition     = fileexists(local.function_zip) ? filebase64sha256(local.function_zip) == local.function_hash : var.function_archive == null
      error_message = var.function_archive == null ? "${local.function_zip} is not the function archive lambda_code/archives.lock.json names (${local.function_hash}): delete it to have it rebuilt, or run `make lock` if lambda_code/guardduty_responder changed." : "function_archive ${local.function_zip} ${fileexists(local.function_zip) ? "is not the function archive lambda_code/archives.lock.json names (${local.function_hash}): build it from this checkout with `python3 lambda_code/build_archives.py function OUT.zip`" : "does not exist"}."
    }
    postcondition {
      condition     = self.code_sha256 == local.function_hash
      error_message = "Lambda holds code whose SHA-256 (${self.code_sha256}) is not the locked ${local.function_hash}."
    }
  }

  # The log group exists (with its retention and key) before the function can write to it.
  depends_on = [terraform_data.function_archive, aws_iam_role_policy.this, aws_cloudwatch_log_group.this, aws_s3_bucket_object_lock_configuration.evidence, aws_s3_bucket_policy.evidence]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed.arn
    }
  }
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowGuardDutyFindingRule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this.arn
}

# The sweep: the same function, on a schedule, resumes every unfinished finding whose lease has run out (an
# invocation that timed out, or whose retries were spent while Jira or DynamoDB were down).
resource "aws_cloudwatch_event_rule" "sweep" {
  name                = "${local.name}-sweep"
  description         = "Resume the GuardDuty responder's unfinished findings"
  schedule_expression = "rate(${var.sweep_interval_minutes} ${var.sweep_interval_minutes == 1 ? "minute" : "minutes"})"
  tags                = local.tags_argument
}

resource "aws_cloudwatch_event_target" "sweep" {
  rule      = aws_cloudwatch_event_rule.sweep.name
  target_id = "responder-sweep"
  arn       = aws_lambda_function.this.arn

  retry_policy {
    maximum_event_age_in_seconds = 60 * var.sweep_interval_minutes
    maximum_retry_attempts       = 2
  }
}

resource "aws_lambda_permission" "sweep" {
  statement_id  = "AllowSweepSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep.arn
}

# ---------------------------------------------------------------------------------------------
# State: the ledger.
# ---------------------------------------------------------------------------------------------

resource "aws_dynamodb_table" "this" {
  name                        = "${local.name}-ledger"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  # The sweep's sparse index: only unfinished findings carry "unfinished", keyed with their lease.
  attribute {
    name = "unfinished"
    type = "S"
  }

  attribute {
    name = "lease_until"
    type = "N"
  }

  global_secondary_index {
    name               = "unfinished"
    hash_key           = "unfinished"
    range_key          = "lease_until"
    projection_type    = "INCLUDE"
    non_key_attributes = ["first_seen"]
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = local.tags_argument
}

# The ledger decides what is done to instances (claims, exemptions, releases, the circuit breaker's count): no one
# but the function's role and the operators may write it, whatever their own IAM policies allow. The deny covers
# every action that writes items: the item writes, their batch form (a transaction is authorised by the actions of
# its parts) and PartiQL's (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/access-control-resource-based.html,
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html).
resource "aws_dynamodb_resource_policy" "ledger" {
  resource_arn = aws_dynamodb_table.this.arn
  # Written once the role it names exists: a role that cannot be created (another with its name) leaves the policy
  # naming the role that runs.
  depends_on = [aws_iam_role.this]
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([{
      Sid       = "OnlyTheResponderAndItsOperatorsWrite"
      Effect    = "Deny"
      Principal = "*"
      Action    = local.ledger_writes
      Resource  = local.table_arn
      Condition = { ArnNotEquals = { "aws:PrincipalArn" = concat(local.writers, local.approvers) } }
      }], flatten([for approvers in [local.approvers] : [
        {
          # Approvers (approver_role_arns) update a finding's approval item, and write nothing else of the ledger.
          Sid       = "ApproversOnlyUpdate"
          Effect    = "Deny"
          Principal = "*"
          Action    = [for action in local.ledger_writes : action if action != "dynamodb:UpdateItem"]
          Resource  = local.table_arn
          Condition = { ArnEquals = { "aws:PrincipalArn" = approvers } }
        },
        {
          Sid       = "ApproversWriteApprovalsOnly"
          Effect    = "Deny"
          Principal = "*"
          Action    = ["dynamodb:UpdateItem"]
          Resource  = local.table_arn
          Condition = {
            ArnEquals                   = { "aws:PrincipalArn" = approvers }
            "ForAnyValue:StringNotLike" = { "dynamodb:LeadingKeys" = ["approval#*"] }
          }
        },
        {
          Sid       = "ApproversWriteTheDecisionOnly"
          Effect    = "Deny"
          Principal = "*"
          Action    = ["dynamodb:UpdateItem"]
          Resource  = local.table_arn
          Condition = {
            ArnEquals                     = { "aws:PrincipalArn" = approvers }
            "ForAnyValue:StringNotEquals" = { "dynamodb:Attributes" = local.approval_attributes }
          }
        },
        {
          Sid       = "ApproversNameTheItem"
          Effect    = "Deny"
          Principal = "*"
          Action    = ["dynamodb:UpdateItem"]
          Resource  = local.table_arn
          Condition = {
            ArnEquals = { "aws:PrincipalArn" = approvers }
            Null      = { "dynamodb:LeadingKeys" = "true" }
          }
        },
    ] if length(approvers) > 0]))
  })
}

# ---------------------------------------------------------------------------------------------
# Notification, failure queues and alarms.
# ---------------------------------------------------------------------------------------------

resource "aws_sns_topic" "this" {
  count             = var.sns_topic_arn == null ? 1 : 0
  name              = "${local.name}-notifications"
  kms_master_key_id = local.kms_key_arn
  tags              = local.tags_argument
}

# Only the responder (the function, and its operators' `replay`) and this deployment's alarms may publish: a
# message on this topic is trusted by the people who read it. Allows alone would not do, since a principal of the
# account with sns:Publish in its own policy needs nothing from the topic's; the deny closes that.
# CloudWatch alarms publish as cloudwatch.amazonaws.com, confined by aws:SourceAccount and aws:SourceArn
# (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html). An IAM principal's request carries
# no aws:SourceArn, and a service's carries no aws:PrincipalArn
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
resource "aws_sns_topic_policy" "this" {
  count      = var.sns_topic_arn == null ? 1 : 0
  arn        = aws_sns_topic.this[0].arn
  depends_on = [aws_iam_role.this] # as the ledger's
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "ResponderPublishes"
        Effect    = "Allow"
        Principal = { AWS = local.writers }
        Action    = "sns:Publish"
        Resource  = local.topic_arn
      },
      {
        Sid       = "AlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "sns:Publish"
        Resource  = local.topic_arn
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = local.alarm_arns }
        }
      },
      {
        Sid       = "NoOtherPublisher"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sns:Publish"
        Resource  = local.topic_arn
        Condition = {
          ArnNotEquals = { "aws:PrincipalArn" = local.writers }
          ArnNotLike   = { "aws:SourceArn" = local.alarm_arns }
        }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.notification_emails)
  topic_arn = local.topic
  protocol  = "email"
  endpoint  = each.value
}

# Other subscribers of any protocol SNS takes (an HTTPS endpoint, an SQS queue, a Lambda function, a chat webhook
# relay), keyed by the caller's own names so that adding one changes no other.
resource "aws_sns_topic_subscription" "other" {
  for_each             = var.notification_subscriptions
  topic_arn            = local.topic
  protocol             = each.value.protocol
  endpoint             = each.value.endpoint
  raw_message_delivery = each.value.raw_message_delivery
  filter_policy        = each.value.filter_policy
}

# Findings the function failed on after its retries, with the event and the error.
resource "aws_sqs_queue" "failed" {
  name                      = "${local.name}-failed-findings"
  kms_master_key_id         = local.kms_key_arn
  message_retention_seconds = 1209600
  tags                      = local.tags_argument
}

# Events EventBridge could not deliver to the function at all.
resource "aws_sqs_queue" "undelivered" {
  name                      = "${local.name}-undelivered-findings"
  kms_master_key_id         = local.kms_key_arn
  message_retention_seconds = 1209600
  tags                      = local.tags_argument
}

resource "aws_sqs_queue_policy" "undelivered" {
  queue_url = aws_sqs_queue.undelivered.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeDeadLetters"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.undelivered.arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.this.arn } }
    }]
  })
}

locals {
  # Every alarm fires on any occurrence within five minutes and notifies the topic.
  alarms = {
    function-errors = {
      description = "The responder failed on a finding (it retries; look at the failed-findings queue if this persists)."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      statistic   = "Sum"
      dimensions  = { FunctionName = aws_lambda_function.this.function_name }
    }
    failed-events = {
      description = "EventBridge could not deliver GuardDuty findings to the responder."
      namespace   = "AWS/Events"
      metric      = "FailedInvocations"
      statistic   = "Sum"
      dimensions  = { RuleName = aws_cloudwatch_event_rule.this.name }
    }
    failed-findings-waiting = {
      description = "Findings the responder failed on wait in ${aws_sqs_queue.failed.name}: replay them after fixing the cause."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      statistic   = "Maximum"
      dimensions  = { QueueName = aws_sqs_queue.failed.name }
    }
    critical-log-lines = {
      description = "The responder logged at CRITICAL: a network interface may be left on the all-traffic untracking group. Find the line in ${local.log_group_name} (its eni) and isolate or restore that interface by hand."
      namespace   = local.metric_namespace
      metric      = "CriticalLogLines"
      statistic   = "Sum"
      dimensions  = {}
    }
    unfinished-findings = {
      description = "A finding is still unfinished ${var.unfinished_alarm_minutes} minutes after its claim (or the sweep could not list them): the sweep keeps resuming it. Find \"finding left unfinished\" in ${local.log_group_name} and the finding's record (guardduty-responder status)."
      namespace   = local.metric_namespace
      metric      = "UnfinishedFindings"
      statistic   = "Sum"
      dimensions  = {}
    }
    undelivered-findings-waiting = {
      description = "Findings EventBridge could not deliver wait in ${aws_sqs_queue.undelivered.name}: replay them after fixing the cause."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      statistic   = "Maximum"
      dimensions  = { QueueName = aws_sqs_queue.undelivered.name }
    }
  }
}

# Every line the function logs at CRITICAL (one JSON object per line, its level in "level"), counted.
resource "aws_cloudwatch_log_metric_filter" "critical" {
  name           = "${local.name}-critical"
  log_group_name = aws_cloudwatch_log_group.this.name
  pattern        = "{ $.level = \"CRITICAL\" }"

  metric_transformation {
    name      = "CriticalLogLines"
    namespace = local.metric_namespace
    value     = "1"
  }
}

# Every line the sweep logs about a finding left unfinished past the bound, or about failing to list them.
resource "aws_cloudwatch_log_metric_filter" "unfinished" {
  name           = "${local.name}-unfinished"
  log_group_name = aws_cloudwatch_log_group.this.name
  pattern        = "{ ($.message = \"finding left unfinished\") || ($.message = \"sweep failed\") }"

  metric_transformation {
    name      = "UnfinishedFindings"
    namespace = local.metric_namespace
    value     = "1"
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each            = var.create_alarms ? local.alarms : {}
  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions == null ? [local.topic] : var.alarm_actions
  tags                = local.tags_argument
}

# ---------------------------------------------------------------------------------------------
# Jira credentials: the secret exists; its value is set outside Terraform unless given.
# ---------------------------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "jira" {
  #checkov:skip=CKV2_AWS_57:Accepted: the Jira token is not rotated automatically and stays valid until someone rotates it in Jira and puts the new one here. Jira issues API tokens; a Lambda rotation function cannot create one. Of this deployment's roles, only the function's may read the secret.
  name                    = "${local.name}/jira"
  description             = var.jira_url == null ? "Jira credentials: JSON {\"url\",\"username\",\"api_token\"} or {\"url\",\"token\"}" : "Jira credentials for ${var.jira_url}: JSON {\"url\",\"username\",\"api_token\"} or {\"url\",\"token\"}"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = local.tags_argument
}

# Given to Terraform, the value goes through the provider's write-only attribute: sent to Secrets Manager, never
# written to the plan or the state. A new jira_secret_version sends it again.
resource "aws_secretsmanager_secret_version" "jira" {
  count                    = var.jira_secret_version == null ? 0 : 1
  secret_id                = aws_secretsmanager_secret.jira.id
  secret_string_wo         = var.jira_secret_value
  secret_string_wo_version = var.jira_secret_version
}

# ---------------------------------------------------------------------------------------------
# Encryption: one key for the ledger, topic, queues, secret, logs and environment.
# ---------------------------------------------------------------------------------------------

resource "aws_kms_key" "this" {
  count               = var.kms_key_arn == null ? 1 : 0
  description         = "${local.name}: ledger, notifications, queues, Jira secret and logs"
  enable_key_rotation = true
  tags                = local.tags_argument
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      # EventBridge writes the events it could not deliver to the undelivered queue. SQS documents the grant an AWS
      # service needs to send to a queue encrypted with a customer managed key, kms:GenerateDataKey and kms:Decrypt
      # with no condition (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html#compatibility-with-aws-services),
      # and SNS that aws:SourceAccount, aws:SourceArn and aws:SourceOrgID are not supported in a key policy for
      # EventBridge (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services):
      # such a condition would fail every delivery. What confines EventBridge is the queue's policy, which lets
      # only this deployment's rule send (aws_sqs_queue_policy.undelivered); the key encrypts nothing EventBridge
      # could read otherwise, since it reads no queue.
      {
        Sid       = "EventBridgeSendsUndeliveredFindings"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
      },
      # The alarms notify the encrypted topic: the actions SNS documents for CloudWatch, with the aws:SourceAccount
      # and aws:SourceArn conditions it recommends against a confused deputy
      # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
      {
        Sid       = "AlarmsNotifyThroughTheTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = local.alarm_arns }
        }
      },
      # No grant to sns.amazonaws.com or sqs.amazonaws.com: SNS and SQS encrypt and decrypt with the permissions
      # of whoever publishes, sends or receives (the function's role, UseTheKey; the account's principals through
      # AccountAdministers), and no topic here delivers to a queue encrypted with this key, the one case where
      # SNS itself needs the key (the SQS page above).
      # CloudWatch Logs encrypts the function's log group, confined to it by the encryption context it sends
      # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
      {
        Sid       = "LogsEncryptTheFunctionLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}" } }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  count         = var.kms_key_arn == null ? 1 : 0
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

locals {
  kms_key_arn = var.kms_key_arn == null ? aws_kms_key.this[0].arn : var.kms_key_arn
  topic       = var.sns_topic_arn == null ? aws_sns_topic.this[0].arn : var.sns_topic_arn
}

# ---------------------------------------------------------------------------------------------
# IAM: exactly what the code calls (each module's PERMISSIONS), scoped wherever IAM allows.
# ---------------------------------------------------------------------------------------------

module "estate_policy" {
  source = "../estate-policy"

  partition             = local.partition
  account_id            = local.account_id
  regions               = [local.region]
  identity_actions      = var.contain_identity || var.credential_findings == "contain"
  metadata_actions      = var.disable_instance_metadata
  credential_actions    = var.credential_findings == "contain" && var.credential_revocation == "role"
  snapshot_lock_actions = var.snapshot_lock_days > 0
  # Every regional deployment's role carries the prefix.
  protected_role_names = concat(compact(["${local.name}-*", var.member_role_name, var.member_role_name == null ? null : "${var.member_role_name}-release"]), var.protected_role_names)
}

locals {
  # A delegated GuardDuty administrator acts in the finding's account through the role
  # modules/member-role creates there; the name is the same in every account, the account is not
  # known until the finding arrives.
  # No member role, no statement: compact() drops the null. organization_id is required with a member role, so
  # the role name is assumed only in the Organization's accounts, never in an account someone else controls.
  member_account_statements = [for role_name in compact([var.member_role_name]) : {
    Sid       = "ActInMemberAccounts"
    Effect    = "Allow"
    Action    = ["sts:AssumeRole"]
    Resource  = "arn:${local.partition}:iam::*:role${var.member_role_path}${role_name}"
    Condition = { StringEquals = { "aws:ResourceOrgID" = var.organization_id } }
  }]

  home_statements = [
    {
      Sid    = "Ledger"
      Effect = "Allow"
      # A transaction (the claim counted by the circuit breaker) is authorised by PutItem and UpdateItem.
      Action   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem"]
      Resource = aws_dynamodb_table.this.arn
    },
    {
      # The sweep lists unfinished findings through their index; the function never scans the table.
      Sid      = "FindUnfinishedFindings"
      Effect   = "Allow"
      Action   = ["dynamodb:Query"]
      Resource = "${aws_dynamodb_table.this.arn}/index/unfinished"
    },
    {
      # Only what GuardDuty confirms is acted on: its copy of the finding, from this region's detector.
      Sid      = "ConfirmWithGuardDuty"
      Effect   = "Allow"
      Action   = ["guardduty:GetFindings"]
      Resource = local.detector_arn
    },
    {
      Sid      = "FindTheDetector"
      Effect   = "Allow"
      Action   = ["guardduty:ListDetectors"]
      Resource = "*" # ListDetectors supports no resource-level permissions.
    },
    {
      Sid      = "Notify"
      Effect   = "Allow"
      Action   = ["sns:Publish"]
      Resource = local.topic
    },
    {
      # Each object written once (If-None-Match); on a retry, one written already is read back (HeadObject).
      Sid       = "StoreEvidence"
      Effect    = "Allow"
      Action    = ["s3:PutObject", "s3:GetObject"]
      Resource  = "${local.evidence_bucket_arn}/incidents/*"
      Condition = { StringEquals = { "s3:ResourceAccount" = local.account_id } }
    },
    {
      Sid      = "ReadTheJiraSecret"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = aws_secretsmanager_secret.jira.arn
    },
  ]

  # malware_scan: an on-demand scan of each isolated instance, followed until its verdict. StartMalwareScan names no
  # resource IAM can scope; GuardDuty creates its malware-protection service-linked role on the first one.
  malware_statements = [
    {
      Sid      = "ScanIsolatedInstances"
      Effect   = "Allow"
      Action   = ["guardduty:StartMalwareScan"]
      Resource = "*"
    },
    {
      Sid      = "FollowMalwareScans"
      Effect   = "Allow"
      Action   = ["guardduty:DescribeMalwareScans"]
      Resource = local.detector_arn
    },
    {
      Sid       = "LetGuardDutyCreateItsScanRole"
      Effect    = "Allow"
      Action    = ["iam:CreateServiceLinkedRole"]
      Resource  = "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/malware-protection.guardduty.amazonaws.com/*"
      Condition = { StringEquals = { "iam:AWSServiceName" = "malware-protection.guardduty.amazonaws.com" } }
    },
  ]

  # This region's detectors (or the one named): GuardDuty's copy of a finding, and the malware scans.
  detector_arn = "arn:${local.partition}:guardduty:${local.region}:${local.account_id}:detector/${coalesce(var.guardduty_detector_id, "*")}"

  responder_statements = concat(module.estate_policy.statements, local.home_statements, [for statement in local.malware_statements : statement if var.malware_scan], local.member_account_statements)

  # What the Lambda service does on the function's behalf (not the code): logs, traces, failures.
  runtime_statements = [
    {
      Sid      = "WriteLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = "${aws_cloudwatch_log_group.this.arn}:*"
    },
    {
      Sid      = "WriteTraces"
      Effect   = "Allow"
      Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      Resource = "*" # X-Ray supports no resource-level permissions.
    },
    {
      Sid      = "SendFailedFindings"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = aws_sqs_queue.failed.arn
    },
    {
      Sid      = "UseTheKey"
      Effect   = "Allow"
      Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource = local.kms_key_arn
    },
  ]
}

locals {
  # IAM is global: the region in the name lets the same prefix be deployed in every region.
  role_name = "${local.name}-${local.region}"

  # With identity containment the role may write inline policies on the account's roles: never on its own.
  guard_statements = [
    {
      Sid      = "NeverLoosenItsOwnPermissions"
      Effect   = "Deny"
      Action   = ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"]
      Resource = local.responder_role_arn
    },
  ]
}

locals {
  # The role acts for the code only from inside this function. Lambda sets lambda:SourceFunctionArn on every
  # request made from the function's execution environment, and on no request it makes with the role outside it
  # (decrypting the environment, sending to the failure destination); it is an ARN key, used here with the
  # documented ArnNotEquals, so a request without it (credentials taken elsewhere, another function given this
  # role) is denied (https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html). The deny
  # covers the code's own actions only: logs, traces, the failure queue and the key are the runtime's, which may
  # not carry the key.
  function_only_statements = [{
    Sid       = "OnlyFromTheFunction"
    Effect    = "Deny"
    Action    = sort(distinct(flatten([for statement in local.responder_statements : statement.Action])))
    Resource  = "*"
    Condition = { ArnNotEquals = { "lambda:SourceFunctionArn" = local.function_arn } }
  }]
}

resource "aws_iam_role" "this" {
  name                 = local.role_name
  path                 = var.role_path
  permissions_boundary = var.permissions_boundary_arn
  description          = "Role of the GuardDuty responder function"
  tags                 = local.tags_argument
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "this" {
  name = "responder"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = concat(local.responder_statements, local.runtime_statements, local.guard_statements, module.estate_policy.guard_statements, local.function_only_statements)
  })
}
