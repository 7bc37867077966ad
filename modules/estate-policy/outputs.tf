output "statements" {
  description = "IAM policy statements (jsonencode-ready) for acting on the instances, groups and services of one account in the given regions."
  value       = local.statements
}

output "guard_statements" {
  description = "Deny statements to add next to `statements`: with credential_actions, the roles whose policies are never written."
  value       = local.guard_statements
}

output "protected_role_arns" {
  description = "ARNs (patterns) of the roles whose policies are never written."
  value       = local.protected_roles
}
