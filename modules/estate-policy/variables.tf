variable "partition" {
  description = "AWS partition of the account (aws, aws-cn, aws-us-gov)."
  type        = string

  validation {
    condition     = can(regex("^aws(-[a-z]+)*$", var.partition))
    error_message = "partition must be an AWS partition such as aws, aws-cn or aws-us-gov."
  }
}

variable "account_id" {
  description = "Account whose EC2, Auto Scaling and Elastic Load Balancing resources the statements reach."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be a 12-digit AWS account id."
  }
}

variable "regions" {
  description = "Regions the responder acts in (each region with GuardDuty has its own deployment)."
  type        = list(string)

  validation {
    condition     = length(var.regions) > 0 && alltrue([for region in var.regions : can(regex("^[a-z]{2,4}(-[a-z]+)+-[0-9]+$", region))])
    error_message = "regions must name at least one region, each such as eu-west-1 or us-gov-west-1."
  }
}

variable "identity_actions" {
  description = "Also allow identity containment: detach the instance profile and revoke the credentials delivered to the instance (an inline deny policy on its role)."
  type        = bool
  default     = true
}

variable "metadata_actions" {
  description = "Also allow turning the instance metadata service off on isolation."
  type        = bool
  default     = false
}

variable "snapshot_lock_actions" {
  description = "Also allow locking the evidence snapshots (LockSnapshot)."
  type        = bool
  default     = false
}

variable "credential_actions" {
  description = "Also allow revoking every older session of a stolen role (credential_revocation = \"role\"): read the role and its instance profiles."
  type        = bool
  default     = false
}

variable "protected_role_names" {
  description = "Role names (IAM wildcards allowed) whose policies the identity and credential statements must never write: the responder's own roles, the member role, and any the operator lists."
  type        = list(string)
  default     = []
}
