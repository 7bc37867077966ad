# Every region GuardDuty runs in, in one plan and one apply: one aliased provider and one module call per region
# (Terraform gives each module instance its provider statically, so a region is two blocks here, not an item of a
# list). Each region gets its own function, ledger, topic, key and role; the role names carry the region, so one
# name_prefix serves them all. Add a region by adding its provider and module blocks, and the region to `regions`.

terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0"
    }
  }
}

locals {
  regions = ["us-east-1", "eu-west-1"]

  # The same settings in every region.
  jira_project_key        = "SEC"
  member_role_name        = "guardduty-responder-member"
  member_role_path        = "/security/"
  member_role_external_id = "gd-responder-7f3a9c"
  organization_id         = "o-a1b2c3d4e5"
}

provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

provider "aws" {
  alias  = "eu_west_1"
  region = "eu-west-1"
}

module "us_east_1" {
  source    = "../../modules/responder"
  providers = { aws = aws.us_east_1 }

  jira_project_key        = local.jira_project_key
  member_role_name        = local.member_role_name
  member_role_path        = local.member_role_path
  member_role_external_id = local.member_role_external_id
  organization_id         = local.organization_id
}

module "eu_west_1" {
  source    = "../../modules/responder"
  providers = { aws = aws.eu_west_1 }

  jira_project_key        = local.jira_project_key
  member_role_name        = local.member_role_name
  member_role_path        = local.member_role_path
  member_role_external_id = local.member_role_external_id
  organization_id         = local.organization_id
}

locals {
  deployments = { "us-east-1" = module.us_east_1, "eu-west-1" = module.eu_west_1 }
}

# Every region of the list has its module block, and every module block acts in its own region.
check "every_region_is_deployed_where_it_says" {
  assert {
    condition     = toset(keys(local.deployments)) == toset(local.regions) && alltrue([for region, deployment in local.deployments : split(":", deployment.function_arn)[3] == region])
    error_message = "local.regions and the module blocks disagree, or a module block is given another region's provider."
  }
}

# What modules/member-role needs in every member account: one responder role per region.
output "member_role_trust" {
  description = "The responder role of each region, the member role's name and the external id, for modules/member-role."
  value = {
    responder_role_arns = [for deployment in values(local.deployments) : deployment.role_arn]
    role_name           = local.member_role_name
    role_path           = local.member_role_path
    external_id         = local.member_role_external_id
    regions             = local.regions
  }
}

output "jira_secret_arns" {
  description = "The Jira secret of each region, to fill."
  value       = { for region, deployment in local.deployments : region => deployment.jira_secret_arn }
}
