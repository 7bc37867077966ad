# The root module's inputs: those of modules/responder, which checks each (its validations name the problem).
# tests/test_terraform.py holds the two to the same names, types, defaults and descriptions.

variable "name_prefix" {
  description = "Prefix of every resource name, so that two deployments can share an account and region."
  type        = string
  default     = "guardduty-responder"
}

variable "tags" {
  description = "Tags added to every resource, beside the project's own."
  type        = map(string)
  default     = {}
}

variable "min_severity" {
  description = "Lowest GuardDuty severity (0-10) that reaches the function. 4 = medium and above, 7 = high and above."
  type        = number
  default     = 4
}

variable "finding_type_prefixes" {
  description = "Finding types that reach the function, as prefixes (e.g. \"Backdoor:EC2/\"). Empty: every EC2 instance finding."
  type        = list(string)
  default     = []
}

variable "jira_project_key" {
  description = "Key of the Jira project the issues are filed in (e.g. SEC)."
  type        = string
}

variable "jira_issue_type" {
  description = "Jira issue type of the issues filed."
  type        = string
  default     = "Task"
}

variable "jira_url" {
  description = "Base URL of the Jira site (https://example.atlassian.net). Recorded as the secret's description to help whoever sets its value; the function reads the URL from the secret."
  type        = string
  default     = null
}

variable "jira_secret_value" {
  description = "Optional JSON for the Jira secret (one of the forms in the README, e.g. {\"url\",\"username\",\"api_token\"}), with jira_secret_version. Ephemeral: it goes to Secrets Manager through a write-only attribute and is never in the plan or the state. Null (the default): set the value outside Terraform."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "jira_secret_version" {
  description = "Version of jira_secret_value: Terraform sends a write-only value only when this number changes. Set both or neither, and raise it with each new value. Later runs without them remove only Terraform's record of the version: the secret keeps its value."
  type        = number
  default     = null
}

variable "notification_emails" {
  description = "E-mail addresses subscribed to the notification topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "dry_run" {
  description = "Read and decide, record and notify what would be done, but change nothing."
  type        = bool
  default     = false
}

variable "exempt_tag_key" {
  description = "Instances carrying this tag key with value \"true\" are never isolated (recorded and ticketed only). null turns the tag exemption off, leaving the ledger's (`guardduty-responder exempt`), which the instance's own role cannot write."
  type        = string
  default     = "guardduty-responder:exempt"
}

variable "max_isolations_per_hour" {
  description = "Circuit breaker: most isolations per account and clock hour (UTC); beyond it findings are reported loudly, not isolated. 0 isolates nothing."
  type        = number
  default     = 20
}

variable "isolation_pause_seconds" {
  description = "Pause between moving an ENI to the untracking group and to the isolation group. 0 keeps the instance's exposure as short as the API allows; see the README."
  type        = number
  default     = 0
}

variable "architecture" {
  description = "Processor architecture of the function: arm64 (cheaper) or x86_64."
  type        = string
  default     = "arm64"
}

variable "function_timeout_seconds" {
  description = "Timeout of the function. Containment takes about a second; Jira, snapshots and retries take the rest."
  type        = number
  default     = 120
}

variable "function_memory_mb" {
  description = "Memory of the function (CPU grows with it; 512 MB keeps the cold start short)."
  type        = number
  default     = 512
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the function: enough for a burst of findings, never starved by other functions. Null reserves none (where the account's unreserved concurrency is already at its minimum); 0 is refused, since it would stop the function."
  type        = number
  default     = 10
}

variable "jira_timeout_seconds" {
  description = "The most time, in seconds, the Jira step may take in all (secret, search, create or comment)."
  type        = number
  default     = 10
}

variable "log_level" {
  description = "Level of the function's log lines: DEBUG, INFO, WARNING, ERROR or CRITICAL. Null: the code's own, INFO."
  type        = string
  default     = null
}

variable "keep_log_group" {
  description = "Leave the function's log group, and the logs in it, in place when the deployment is destroyed."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the function's logs."
  type        = number
  default     = 365
}

variable "record_retention_days" {
  description = "How long the ledger keeps a finding's record (DynamoDB TTL)."
  type        = number
  default     = 365
}

variable "deletion_protection" {
  description = "Protect the ledger table from deletion. Turn off only to destroy a test deployment."
  type        = bool
  default     = true
}

variable "credential_findings" {
  description = "What to do with instance credential exfiltration findings (UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration*): \"ignore\" them (the rule does not pass them), \"report\" them, or \"contain\" them (isolate the instance, detach its instance profile and revoke its credentials as credential_revocation says)."
  type        = string
  default     = "report"
}

variable "snapshot_lock_days" {
  description = "Days each evidence snapshot is locked in governance mode (LockSnapshot), as soon as it is taken: it cannot be deleted until the lock expires or someone allowed to unlock it does. 0: not locked."
  type        = number
  default     = 0
}

variable "contain_identity" {
  description = "On every isolation, also detach the instance profile and revoke the credentials delivered to this instance before the isolation: an inline deny policy guardduty-responder-revoke-<instance id> on its role, conditioned on ec2:SourceInstanceARN and aws:TokenIssueTime. Grants iam:PutRolePolicy (and ListRolePolicies, GetRolePolicy, DeleteRolePolicy) on the account's roles other than the protected ones. false: only contained credential findings do this."
  type        = bool
  default     = true
}

variable "credential_revocation" {
  description = "How a contained credential finding revokes: \"instance\" (the credentials delivered to this instance, as contain_identity does) or \"role\" (every session of the stolen role issued before now, as the IAM console's Revoke active sessions; skipped when another instance or principal uses the role)."
  type        = string
  default     = "instance"
}

variable "disable_instance_metadata" {
  description = "On every isolation, also turn the instance metadata service off (ModifyInstanceMetadataOptions HttpEndpoint=disabled; release puts the previous options back). Off by default: tools that examine the instance later through Systems Manager need it."
  type        = bool
  default     = false
}

variable "protected_role_names" {
  description = "Role names (IAM wildcards allowed) whose policies the responder never writes, besides its own roles, the member roles, AWS's reserved roles and OrganizationAccountAccessRole: an instance holding one is isolated, and its credentials are left for a person to revoke."
  type        = list(string)
  default     = []
}

variable "response_rules" {
  description = <<-EOT
    What the function does with a finding, as an ordered list of rules: the first that matches decides.
    A rule matches on the finding type's prefix (finding_type_prefix), a minimum severity (min_severity),
    whether the instance is "implicated" (it made the DNS request, the connection, ran the process, holds
    the file) or only "attacked" (probed, connected to) or "any" (involvement), the resource types
    (resource_types: Instance, AccessKey, Container, ECSCluster, EKSCluster, AttackSequence) and instance tags
    (instance_tags, "*" for any value); its action is "isolate", "approve" (record, Jira issue and message
    saying what isolation would do; isolated once a person approves), "report" (record, Jira issue,
    message) or "ignore" (record only). An "approve" rule may set approval_timeout_minutes (0: no
    timeout, at most 10080) and on_timeout ("isolate" or "report"), applied by the sweep. Null: instance
    credential findings as credential_findings says, container and cluster findings reported, implicated
    instances isolated from severity 7 and held for approval from severity 4, attacked instances and the
    rest reported.
  EOT
  type = list(object({
    name                     = string
    action                   = string
    finding_type_prefix      = optional(string, "")
    min_severity             = optional(number, 0)
    involvement              = optional(string, "any")
    resource_types           = optional(list(string), [])
    instance_tags            = optional(map(string), {})
    approval_timeout_minutes = optional(number, 0)
    on_timeout               = optional(string, "report")
  }))
  default = null

  validation {
    condition     = alltrue([for rule in coalesce(var.response_rules, []) : contains(["isolate", "approve", "report", "ignore"], rule.action)])
    error_message = "response_rules: ${join("; ", [for index, rule in coalesce(var.response_rules, []) : "rule ${index + 1} (\"${rule.name}\") has action \"${rule.action}\"" if !contains(["isolate", "approve", "report", "ignore"], rule.action)])}: an action is \"isolate\", \"approve\", \"report\" or \"ignore\"."
  }
  validation {
    condition     = alltrue([for rule in coalesce(var.response_rules, []) : contains(["implicated", "attacked", "any"], rule.involvement)])
    error_message = "response_rules: ${join("; ", [for index, rule in coalesce(var.response_rules, []) : "rule ${index + 1} (\"${rule.name}\") has involvement \"${rule.involvement}\"" if !contains(["implicated", "attacked", "any"], rule.involvement)])}: involvement is \"implicated\", \"attacked\" or \"any\"."
  }
  validation {
    condition     = alltrue([for rule in coalesce(var.response_rules, []) : rule.min_severity >= 0 && rule.min_severity <= 10])
    error_message = "response_rules: ${join("; ", [for index, rule in coalesce(var.response_rules, []) : "rule ${index + 1} (\"${rule.name}\") has min_severity ${rule.min_severity}" if rule.min_severity < 0 || rule.min_severity > 10])}: min_severity is from 0 to 10."
  }
  validation {
    condition     = length(distinct([for rule in coalesce(var.response_rules, []) : rule.name])) == length(coalesce(var.response_rules, [])) && alltrue([for rule in coalesce(var.response_rules, []) : length(trimspace(rule.name)) > 0 && length(rule.name) <= 64])
    error_message = "response_rules: each rule needs a name of 1-64 characters, unique in the list (repeated or empty: ${join(", ", [for name in distinct([for rule in coalesce(var.response_rules, []) : rule.name]) : "\"${name}\"" if length([for rule in coalesce(var.response_rules, []) : rule if rule.name == name]) > 1 || length(trimspace(name)) == 0 || length(name) > 64])})."
  }
}

variable "guardduty_detector_id" {
  description = "The GuardDuty detector of this region that findings are confirmed with (GetFindings). Null: the region's only detector, found with ListDetectors."
  type        = string
  default     = null
}

variable "sweep_interval_minutes" {
  description = "Minutes between sweeps: the function, on a schedule, acts on approvals and rejections (approved findings are isolated at the next sweep), applies approval timeouts, and resumes every unfinished finding whose lease has run out (a timed-out invocation, retries spent while Jira or DynamoDB were down)."
  type        = number
  default     = 1
}

variable "jira_approval_status" {
  description = "The Jira status that approves a finding awaiting approval: the sweep isolates the instance of an issue moved there, naming the person who moved it (from the issue's changelog). Null: approving through Jira is off (approve with guardduty-responder approve)."
  type        = string
  default     = null
}

variable "unfinished_alarm_minutes" {
  description = "Minutes after its claim a finding still unfinished raises the unfinished-findings alarm (each sweep that finds it logs it)."
  type        = number
  default     = 30
}

variable "member_role_name" {
  description = "Name of the role (modules/member-role) the function assumes to act in the account a finding is about, when this is the delegated GuardDuty administrator account. Null: the function acts in its own account only."
  type        = string
  default     = null
}

variable "member_role_path" {
  description = "IAM path of the member role in every member account (modules/member-role's role_path, e.g. /security/); the release role has the same."
  type        = string
  default     = "/"
}

variable "member_role_external_id" {
  description = "External id the function presents when it assumes the member role (the member role's trust policy requires it). Required with member_role_name. Not a secret: it guards against a confused deputy."
  type        = string
  default     = null
}

variable "organization_id" {
  description = "AWS Organizations id (o-...). When set, the function may assume the member role only in accounts of this organisation."
  type        = string
  default     = null
}

variable "operator_role_arns" {
  description = "Roles of the people who run `guardduty-responder release`, `exempt` and `replay` against this deployment: besides the function's role, only they may write the ledger and publish to the topic (resource policies deny everyone else)."
  type        = list(string)
  default     = []
}

variable "approver_role_arns" {
  description = "Roles of the people who approve or reject isolations that a response rule holds for approval (guardduty-responder approve, reject) without being operators: the ledger's resource policy lets them write approval items and nothing else. Attach the approver_policy_json output to them (operators need it too)."
  type        = list(string)
  default     = []
}

variable "role_path" {
  description = "IAM path of the function's role (e.g. /security/): a path that service control policies or permissions boundaries are written for."
  type        = string
  default     = "/"
}

variable "permissions_boundary_arn" {
  description = "ARN of a managed policy set as the permissions boundary of the function's role (null: none). Where a service control policy requires a boundary on iam:CreateRole, name that one; it must allow what the role's own policy does."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "ARN of an existing customer managed KMS key for the ledger, topic, queues, secret, logs and environment, instead of a key of the deployment's own. Its policy must let the account's principals use it (IAM policies), CloudWatch Logs encrypt the log group /aws/lambda/<name_prefix>, EventBridge encrypt (kms:GenerateDataKey, kms:Decrypt) for the undelivered-findings queue and, with alarms, CloudWatch for the topic: the statements of the module's own key, in main.tf."
  type        = string
  default     = null
}

variable "sns_topic_arn" {
  description = "ARN of an existing SNS topic for the notifications and alarms, instead of a topic of the deployment's own. Its policy is the caller's: it must let the function's role publish, and, with alarms, CloudWatch; encrypted, with kms_key_arn's key or the AWS managed alias/aws/sns."
  type        = string
  default     = null
}

variable "notification_subscriptions" {
  description = "Subscribers of the topic besides notification_emails, by a name of yours: protocol (https, http, email, email-json, sqs, lambda, firehose, application, sms), endpoint, and optionally raw_message_delivery and filter_policy (JSON). An SQS queue or a Lambda function must allow the topic to deliver to it."
  type = map(object({
    protocol             = string
    endpoint             = string
    raw_message_delivery = optional(bool, false)
    filter_policy        = optional(string)
  }))
  default = {}
}

variable "create_alarms" {
  description = "Create the deployment's CloudWatch alarms (function errors, failed deliveries, waiting failed findings, CRITICAL log lines, unfinished findings). Off where alarms are built from the metrics elsewhere."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "What the alarms notify (ARNs: an SNS topic, an incident manager's response plan). Null: the notification topic."
  type        = list(string)
  default     = null
}

variable "secret_recovery_window_days" {
  description = "Days Secrets Manager keeps the Jira secret after the deployment is destroyed: 0 deletes it at once (a test deployment re-created under the same name), 7-30 otherwise."
  type        = number
  default     = 7
}

variable "build_python" {
  description = "Command that runs the archive builder (a Python 3.10 or newer with pip). Null: python3, or python on Windows."
  type        = string
  default     = null
}

variable "function_archive" {
  description = "Path of a function archive built beforehand (`python3 lambda_code/build_archives.py function OUT.zip`, e.g. in CI), deployed instead of building one. It must be the one lambda_code/archives.lock.json names; the plan fails otherwise."
  type        = string
  default     = null
}

variable "layer_archive" {
  description = "Path of a layer archive built beforehand for the architecture (`python3 lambda_code/build_archives.py layer OUT.zip --architecture ARCH`), published instead of building one; it must be the locked one."
  type        = string
  default     = null
}

variable "layer_arns" {
  description = "ARNs of existing layer versions that hold the function's dependencies (layer-requirements.txt) for python3.13 and the architecture, used instead of publishing a layer. Their content is yours to check."
  type        = list(string)
  default     = null
}

variable "evidence_bucket_name" {
  description = "Name of the evidence bucket the module creates (S3 Object Lock). null: <name_prefix>-evidence-<account id>-<region> (-ev- where that passes 63 characters)."
  type        = string
  default     = null

  validation {
    condition     = var.evidence_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.evidence_bucket_name))
    error_message = "evidence_bucket_name must be an S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens."
  }
}

variable "existing_evidence_bucket" {
  description = "An evidence bucket you manage (Object Lock on, versioned, encrypted) to write to instead of creating one; the function gets s3:PutObject and s3:GetObject on its incidents/ prefix. `guardduty-responder doctor` checks it."
  type        = string
  default     = null

  validation {
    condition     = var.existing_evidence_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.existing_evidence_bucket))
    error_message = "existing_evidence_bucket must be an S3 bucket name."
  }
}

variable "evidence_retention_days" {
  description = "Days each evidence object is kept under Object Lock (the bucket's default retention)."
  type        = number
  default     = 365

  validation {
    condition     = var.evidence_retention_days == floor(var.evidence_retention_days) && var.evidence_retention_days >= 1 && var.evidence_retention_days <= 36500
    error_message = "evidence_retention_days must be a whole number of days from 1 to 36500."
  }
}

variable "evidence_lock_mode" {
  description = "Object Lock mode of the evidence: GOVERNANCE (a principal allowed s3:BypassGovernanceRetention may delete early; the bucket policy allows no one) or COMPLIANCE (no one, the root user included, until the retention ends)."
  type        = string
  default     = "GOVERNANCE"

  validation {
    condition     = contains(["GOVERNANCE", "COMPLIANCE"], var.evidence_lock_mode)
    error_message = "evidence_lock_mode must be \"GOVERNANCE\" or \"COMPLIANCE\"."
  }
}

variable "evidence_access_log_bucket" {
  description = "Bucket that receives the evidence bucket's S3 server access logs (it must allow the logging service to write). null: no access logging."
  type        = string
  default     = null
}

variable "evidence_access_log_prefix" {
  description = "Prefix of the evidence bucket's access logs in evidence_access_log_bucket."
  type        = string
  default     = "guardduty-responder-evidence/"
}

variable "malware_scan" {
  description = "Start a GuardDuty Malware Protection on-demand scan of each isolated instance once its evidence is kept, and comment the verdict on the incident's Jira issue when the sweep sees the scan end. GuardDuty charges per GB scanned; an instance tagged GuardDutyExcluded is not scanned, nor one scanned on demand within the hour."
  type        = bool
  default     = false
}
