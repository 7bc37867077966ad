variable "name_prefix" {
  description = "Prefix of every resource name, so that two deployments can share an account and region."
  type        = string
  default     = "guardduty-responder"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
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

  validation {
    condition     = var.min_severity >= 0 && var.min_severity <= 10
    error_message = "min_severity must be between 0 and 10 (GuardDuty's severity scale)."
  }
}

variable "finding_type_prefixes" {
  description = "Finding types that reach the function, as prefixes (e.g. \"Backdoor:EC2/\"). Empty: every EC2 instance finding."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for prefix in var.finding_type_prefixes : can(regex("^[A-Za-z0-9:/.!&_-]+$", prefix))])
    error_message = "Each finding type prefix may hold only letters, digits and : / . ! & _ - (e.g. \"UnauthorizedAccess:EC2/\")."
  }
}

variable "jira_project_key" {
  description = "Key of the Jira project the issues are filed in (e.g. SEC)."
  type        = string

  validation {
    condition     = can(regex("^[A-Z][A-Z0-9_]{0,254}$", var.jira_project_key))
    error_message = "jira_project_key must be a Jira project key: upper-case letters, digits and underscores, starting with a letter."
  }
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

  validation {
    condition     = var.jira_url == null || can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/.*)?$", var.jira_url))
    error_message = "jira_url must be an https:// URL, e.g. https://example.atlassian.net."
  }
}

variable "jira_secret_value" {
  description = "Optional JSON for the Jira secret ({\"url\",\"username\",\"api_token\"} or {\"url\",\"token\"}). Leave null (the default) and set the value outside Terraform, so the token never lands in the Terraform state."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.jira_secret_value == null || can(jsondecode(var.jira_secret_value).url)
    error_message = "jira_secret_value must be JSON with at least a \"url\" key."
  }
}

variable "notification_emails" {
  description = "E-mail addresses subscribed to the notification topic (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", email))])
    error_message = "Each notification e-mail must be an address such as soc@example.com."
  }
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

  validation {
    # A conditional, not ||: Terraform evaluates both sides of ||, and length(null) fails.
    condition     = var.exempt_tag_key == null ? true : length(var.exempt_tag_key) > 0 && length(var.exempt_tag_key) <= 128
    error_message = "exempt_tag_key must be a tag key of 1-128 characters, or null to turn the exemption tag off."
  }
}

variable "max_isolations_per_hour" {
  description = "Circuit breaker: most isolations per account and clock hour (UTC); beyond it findings are reported loudly, not isolated. 0 isolates nothing."
  type        = number
  default     = 20

  validation {
    condition     = var.max_isolations_per_hour >= 0 && var.max_isolations_per_hour <= 1000 && floor(var.max_isolations_per_hour) == var.max_isolations_per_hour
    error_message = "max_isolations_per_hour must be a whole number from 0 (isolate nothing, only report) to 1000."
  }
}

variable "isolation_pause_seconds" {
  description = "Pause between moving an ENI to the untracking group and to the isolation group. 0 keeps the instance's exposure as short as the API allows; see the README."
  type        = number
  default     = 0

  validation {
    condition     = var.isolation_pause_seconds >= 0 && var.isolation_pause_seconds <= var.function_timeout_seconds / 4
    error_message = "isolation_pause_seconds must be between 0 and a quarter of function_timeout_seconds: a timeout during the pause would leave the instance on the all-traffic untracking group until the retry."
  }
}

variable "architecture" {
  description = "Processor architecture of the function: arm64 (cheaper) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "function_timeout_seconds" {
  description = "Timeout of the function. Containment takes about a second; Jira, snapshots and retries take the rest."
  type        = number
  default     = 120

  validation {
    condition     = var.function_timeout_seconds >= 30 && var.function_timeout_seconds <= 900
    error_message = "function_timeout_seconds must be between 30 and 900."
  }
}

variable "function_memory_mb" {
  description = "Memory of the function (CPU grows with it; 512 MB keeps the cold start short)."
  type        = number
  default     = 512

  validation {
    condition     = var.function_memory_mb >= 128 && var.function_memory_mb <= 10240
    error_message = "function_memory_mb must be between 128 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the function: enough for a burst of findings, never starved by other functions."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrency >= 1
    error_message = "reserved_concurrency must be at least 1."
  }
}

variable "jira_timeout_seconds" {
  description = "The most time, in seconds, the Jira step may take in all (secret, search, create or comment)."
  type        = number
  default     = 10

  validation {
    condition     = var.jira_timeout_seconds >= 1 && var.jira_timeout_seconds <= 60
    error_message = "jira_timeout_seconds must be between 1 and 60."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "record_retention_days" {
  description = "How long the ledger keeps a finding's record (DynamoDB TTL)."
  type        = number
  default     = 365

  validation {
    condition     = var.record_retention_days >= 1 && var.record_retention_days <= 3650
    error_message = "record_retention_days must be between 1 and 3650."
  }
}

variable "deletion_protection" {
  description = "Protect the ledger table from deletion. Turn off only to destroy a test deployment."
  type        = bool
  default     = true
}

variable "credential_findings" {
  description = "What to do with instance credential exfiltration findings (UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration*): \"ignore\" them (the rule does not pass them), \"report\" them, or \"contain\" them (also detach the instance profile and revoke the role's sessions issued until then; grants iam:PutRolePolicy on the account's roles)."
  type        = string
  default     = "report"

  validation {
    condition     = contains(["ignore", "report", "contain"], var.credential_findings)
    error_message = "credential_findings must be \"ignore\", \"report\" or \"contain\"."
  }
}

variable "response_rules" {
  description = <<-EOT
    What the function does with a finding, as an ordered list of rules: the first that matches decides.
    A rule matches on the finding type's prefix (finding_type_prefix), a minimum severity (min_severity),
    whether the instance is "implicated" (it made the DNS request, the connection, ran the process, holds
    the file) or only "attacked" (probed, connected to) or "any" (involvement), the resource types
    (resource_types: Instance, AccessKey, Container, ECSCluster, EKSCluster) and instance tags
    (instance_tags, "*" for any value); its action is "isolate", "report" (record, Jira issue, message)
    or "ignore" (record only). Null: instance credential findings as credential_findings says, container
    and cluster findings reported, implicated instances isolated, attacked instances reported.
  EOT
  type = list(object({
    name                = string
    action              = string
    finding_type_prefix = optional(string, "")
    min_severity        = optional(number, 0)
    involvement         = optional(string, "any")
    resource_types      = optional(list(string), [])
    instance_tags       = optional(map(string), {})
  }))
  default = null

  validation {
    condition     = var.response_rules == null || (length(coalesce(var.response_rules, [])) > 0 && length(coalesce(var.response_rules, [])) <= 50)
    error_message = "response_rules must hold between 1 and 50 rules (or be null for the default rules)."
  }
  validation {
    condition     = alltrue([for rule in coalesce(var.response_rules, []) : contains(["isolate", "report", "ignore"], rule.action)])
    error_message = "response_rules: ${join("; ", [for index, rule in coalesce(var.response_rules, []) : "rule ${index + 1} (\"${rule.name}\") has action \"${rule.action}\"" if !contains(["isolate", "report", "ignore"], rule.action)])}: an action is \"isolate\", \"report\" or \"ignore\"."
  }
  validation {
    condition     = alltrue([for rule in coalesce(var.response_rules, []) : contains(["implicated", "attacked", "any"], rule.involvement)])
    error_message = "response_rules: ${join("; ", [for index, rule in coalesce(var.response_rules, []) : "rule ${index + 1} (\"${rule.name}\") has involvement \"${rule.involvement}\"" if !contains(["implicated", "attacked", "any"], rule.involvement)])}: involvement is \"implicated\", \"attacked\" or \"any\"."
  }
  validation {
    condition     = alltrue([for rule in coalesce(var.response_rules, []) : alltrue([for kind in rule.resource_types : contains(["Instance", "AccessKey", "Container", "ECSCluster", "EKSCluster"], kind)])])
    error_message = "response_rules: ${join("; ", [for index, rule in coalesce(var.response_rules, []) : "rule ${index + 1} (\"${rule.name}\") lists resource types ${jsonencode(rule.resource_types)}" if !alltrue([for kind in rule.resource_types : contains(["Instance", "AccessKey", "Container", "ECSCluster", "EKSCluster"], kind)])])}: the resource types are Instance, AccessKey, Container, ECSCluster and EKSCluster."
  }
  validation {
    condition     = alltrue([for rule in coalesce(var.response_rules, []) : rule.min_severity >= 0 && rule.min_severity <= 10])
    error_message = "response_rules: ${join("; ", [for index, rule in coalesce(var.response_rules, []) : "rule ${index + 1} (\"${rule.name}\") has min_severity ${rule.min_severity}" if rule.min_severity < 0 || rule.min_severity > 10])}: min_severity is from 0 to 10."
  }
  validation {
    condition     = alltrue([for rule in coalesce(var.response_rules, []) : can(regex("^[A-Za-z0-9:/.!&_-]{0,128}$", rule.finding_type_prefix))])
    error_message = "response_rules: ${join("; ", [for index, rule in coalesce(var.response_rules, []) : "rule ${index + 1} (\"${rule.name}\") has finding_type_prefix \"${rule.finding_type_prefix}\"" if !can(regex("^[A-Za-z0-9:/.!&_-]{0,128}$", rule.finding_type_prefix))])}: a prefix holds up to 128 letters, digits and : / . ! & _ -."
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

  validation {
    condition     = var.guardduty_detector_id == null || can(regex("^[a-z0-9]{1,300}$", var.guardduty_detector_id))
    error_message = "guardduty_detector_id must be a GuardDuty detector id (lower-case letters and digits)."
  }
}

variable "sweep_interval_minutes" {
  description = "Minutes between sweeps: the function, on a schedule, resumes every unfinished finding whose lease has run out (a timed-out invocation, retries spent while Jira or DynamoDB were down)."
  type        = number
  default     = 5

  validation {
    condition     = var.sweep_interval_minutes >= 1 && var.sweep_interval_minutes <= 60 && floor(var.sweep_interval_minutes) == var.sweep_interval_minutes
    error_message = "sweep_interval_minutes must be a whole number of minutes from 1 to 60."
  }
}

variable "unfinished_alarm_minutes" {
  description = "Minutes after its claim a finding still unfinished raises the unfinished-findings alarm (each sweep that finds it logs it)."
  type        = number
  default     = 30

  validation {
    condition     = var.unfinished_alarm_minutes >= 1 && var.unfinished_alarm_minutes <= 10080 && floor(var.unfinished_alarm_minutes) == var.unfinished_alarm_minutes
    error_message = "unfinished_alarm_minutes must be a whole number of minutes from 1 to 10080 (a week)."
  }
}

variable "member_role_name" {
  description = "Name of the role (modules/member-role) the function assumes to act in the account a finding is about, when this is the delegated GuardDuty administrator account. Null: the function acts in its own account only."
  type        = string
  default     = null

  validation {
    condition     = var.member_role_name == null || can(regex("^[\\w+=,.@-]{1,56}$", var.member_role_name))
    error_message = "member_role_name must be an IAM role name of 1-56 letters, digits and + = , . @ - _ (modules/member-role adds \"-release\" for the release role)."
  }
}

variable "member_role_external_id" {
  description = "External id the function presents when it assumes the member role (the member role's trust policy requires it). Required with member_role_name. Not a secret: it guards against a confused deputy."
  type        = string
  default     = null

  validation {
    # RE2 repeats at most 1000 times, so the length is checked apart from the characters.
    condition     = var.member_role_external_id == null ? true : length(var.member_role_external_id) >= 2 && length(var.member_role_external_id) <= 1224 && can(regex("^[\\w+=,.@:/-]+$", var.member_role_external_id))
    error_message = "member_role_external_id must be 2-1224 characters of letters, digits and + = , . @ : / - _ (what STS accepts)."
  }

  validation {
    condition     = var.member_role_name == null || var.member_role_external_id != null
    error_message = "member_role_external_id must be set when member_role_name is: the member role trusts only callers presenting it."
  }
}

variable "organization_id" {
  description = "AWS Organizations id (o-...). When set, the function may assume the member role only in accounts of this organisation."
  type        = string
  default     = null

  validation {
    condition     = var.organization_id == null || can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must be an AWS Organizations id such as o-a1b2c3d4e5."
  }

  validation {
    condition     = var.member_role_name == null || var.organization_id != null
    error_message = "organization_id must be set when member_role_name is: without it the function may assume a role of that name in any AWS account."
  }
}

variable "operator_role_arns" {
  description = "Roles of the people who run `guardduty-responder release`, `exempt` and `replay` against this deployment: besides the function's role, only they may write the ledger and publish to the topic (resource policies deny everyone else)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.operator_role_arns : can(regex("^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\\w+=,.@/-]+$", arn))])
    error_message = "operator_role_arns must list IAM role ARNs, e.g. arn:aws:iam::111122223333:role/incident-responders."
  }
}
