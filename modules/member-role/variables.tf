variable "responder_role_arns" {
  description = "Roles of the responder functions (one per region, in the delegated GuardDuty administrator account) that may assume this role: the root module's member_role_trust.responder_role_arn of each deployment."
  type        = list(string)

  validation {
    condition     = length(var.responder_role_arns) > 0 && alltrue([for arn in var.responder_role_arns : can(regex("^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\\w+=,.@/-]+$", arn))])
    error_message = "responder_role_arns must list at least one IAM role ARN, e.g. arn:aws:iam::111122223333:role/guardduty-responder-eu-west-1."
  }
}

variable "external_id" {
  description = "External id the responder presents when it assumes the role (the root module's member_role_external_id)."
  type        = string

  validation {
    # RE2 repeats at most 1000 times, so the length is checked apart from the characters.
    condition     = length(var.external_id) >= 2 && length(var.external_id) <= 1224 && can(regex("^[\\w+=,.@:/-]+$", var.external_id))
    error_message = "external_id must be 2-1224 characters of letters, digits and + = , . @ : / - _ (what STS accepts)."
  }
}

variable "role_name" {
  description = "Name of the role; the same in every member account (the root module's member_role_name)."
  type        = string
  default     = "guardduty-responder-member"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,56}$", var.role_name))
    error_message = "role_name must be an IAM role name of 1-56 letters, digits and + = , . @ - _ (the release role adds \"-release\")."
  }
}

variable "regions" {
  description = "Regions the responder is deployed in: the role acts only on resources there."
  type        = list(string)

  validation {
    condition     = length(var.regions) > 0 && alltrue([for region in var.regions : can(regex("^[a-z]{2,4}(-[a-z]+)+-[0-9]+$", region))])
    error_message = "regions must name at least one region, each such as eu-west-1 or us-gov-west-1."
  }
}

variable "identity_actions" {
  description = "Let the responder detach the instance profile of an isolated instance and revoke the credentials delivered to it (an inline deny policy on its role): on when the deployments use contain_identity (the default) or credential_findings = \"contain\"."
  type        = bool
  default     = true
}

variable "metadata_actions" {
  description = "Let the responder turn an isolated instance's metadata service off (set when the deployments use disable_instance_metadata)."
  type        = bool
  default     = false
}

variable "snapshot_lock_actions" {
  description = "Let the responder lock its evidence snapshots (set when the deployments use snapshot_lock_days > 0)."
  type        = bool
  default     = false
}

variable "credential_actions" {
  description = "Let the responder revoke every older session of a stolen role (set when the deployments use credential_findings = \"contain\" with credential_revocation = \"role\")."
  type        = bool
  default     = false
}

variable "protected_role_names" {
  description = "Role names of this account (IAM wildcards allowed) whose policies the responder must never write, besides this module's roles, the responder's, AWS's reserved roles and OrganizationAccountAccessRole."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of the role."
  type        = map(string)
  default     = {}
}

variable "operator_role_arns" {
  description = "Roles of the people who run `guardduty-responder release` for this account's instances: they get a role of their own, <role_name>-release, that can only put network interfaces back on groups, after reading the instance and the groups (same external id)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.operator_role_arns : can(regex("^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\\w+=,.@/-]+$", arn))])
    error_message = "operator_role_arns must be IAM role ARNs."
  }
}

variable "role_path" {
  description = "IAM path of the member role and the release role (e.g. /security/): a path that service control policies or permissions boundaries are written for."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7E]{1,510}/)?$", var.role_path))
    error_message = "role_path must start and end with / (e.g. /security/), up to 512 printable characters."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a managed policy set as the permissions boundary of every role this module creates (null: none). Where a service control policy requires a boundary on iam:CreateRole, name that one."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws(-[a-z]+)*:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM managed policy ARN, e.g. arn:aws:iam::111122223333:policy/boundary."
  }
}
