terraform {
  # Terraform 1.9: validations that refer to other variables. The provider: IAM roles and inline policies, unchanged
  # from v5 to v6.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}
