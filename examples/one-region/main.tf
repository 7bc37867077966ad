# One region, from a configuration of your own: your provider (its region, credentials and default tags) is the one
# the module uses. Copy this folder, set the source to this repository at the commit you reviewed
# ("git::https://example.com/guardduty-responder.git//modules/responder?ref=<commit>"), and apply.

terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0"
    }
  }
}

provider "aws" {
  region = "eu-west-1"

  default_tags {
    tags = { owner = "security" }
  }
}

module "responder" {
  source = "../../modules/responder"

  jira_project_key    = "SEC"
  notification_emails = ["soc@example.com"]
  notification_subscriptions = {
    pager = { protocol = "https", endpoint = "https://events.pagerduty.example/integration/abc123/enqueue" }
  }
  tags = { service = "guardduty-responder" }
}

output "jira_secret_arn" {
  description = "The secret to fill with the Jira credentials."
  value       = module.responder.jira_secret_arn
}
