output "statements" {
  description = "IAM policy statements (jsonencode-ready) for acting on the instances, groups and services of one account in the given regions."
  value       = local.statements
}
