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

variable "credential_actions" {
  description = "Also allow what answering an instance credential exfiltration finding takes: detach the instance profile and revoke the role's older sessions."
  type        = bool
  default     = false
}

variable "protected_role_names" {
  description = "Role names (IAM wildcards allowed) whose policies the credential statements must never write: the responder's own roles and the member role."
  type        = list(string)
  default     = []
}
