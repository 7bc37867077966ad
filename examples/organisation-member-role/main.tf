# The member role in the accounts of an organisation, from the delegated GuardDuty administrator's pipeline: one
# provider per member account (through the role AWS Organizations creates in each), one module call per account, the
# module pinned to the commit of this repository you reviewed (a commit, not a tag: a tag can be moved), so that every
# account gets the reviewed policy. A
# CloudFormation StackSet or an account factory rolls the same role out to accounts created later.

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}

locals {
  # The every-region example's output member_role_trust.
  responder_role_arns = [
    "arn:aws:iam::111111111111:role/guardduty-responder-us-east-1",
    "arn:aws:iam::111111111111:role/guardduty-responder-eu-west-1",
  ]
  regions     = ["us-east-1", "eu-west-1"]
  role_name   = "guardduty-responder-member"
  role_path   = "/security/" # the responders' member_role_path
  external_id = "gd-responder-7f3a9c"
}

provider "aws" {
  alias  = "workloads"
  region = "us-east-1" # IAM is global: any region

  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"
  }
}

module "member_role_workloads" {
  source    = "git::https://example.com/guardduty-responder.git//modules/member-role?ref=0123456789abcdef0123456789abcdef01234567" # your reviewed commit
  providers = { aws = aws.workloads }

  role_name           = local.role_name
  external_id         = local.external_id
  regions             = local.regions
  responder_role_arns = local.responder_role_arns
  credential_actions  = true # with credential_findings = "contain" and credential_revocation = "role"
  operator_role_arns  = ["arn:aws:iam::111111111111:role/incident-responders"]
  role_path           = local.role_path
}
