terraform {
  # Terraform 1.11: write-only attributes (the Jira secret's value) and ephemeral variables. The provider: 5.100, the
  # oldest the tests run on, which has every resource and attribute used here (the secret's write-only value,
  # DynamoDB resource policies, the log group's skip_destroy).
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0"
    }
  }
}
