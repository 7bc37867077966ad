output "statements" {
  description = "IAM policy statements (jsonencode-ready) for acting on the instances, groups and services of one account in the given regions."
  value       = local.statements
}

output "guard_statements" {
  description = "Deny statements to add next to `statements`: with credential_actions, the roles whose policies are never written."
  value       = local.guard_statements
}
