# The evidence bucket: each incident's evidence (the finding as delivered and as GuardDuty holds it, the instance and
# its interfaces before and after, the groups' rules, the console output, the timeline) and a manifest of their
# SHA-256 hashes, under incidents/<account>/<region>/<instance>/<finding>/. Object Lock keeps every object for
# evidence_retention_days; the policy refuses deletes and plain-HTTP requests to everyone.

locals {
  create_evidence_bucket = var.existing_evidence_bucket == null
  # S3 allows 63 characters: the longest name_prefix (32) and region (14) fit with "-ev-" instead of "-evidence-".
  evidence_bucket_long  = "${local.name}-evidence-${local.account_id}-${local.region}"
  evidence_bucket_short = "${local.name}-ev-${local.account_id}-${local.region}"
  evidence_bucket_name  = local.create_evidence_bucket ? coalesce(var.evidence_bucket_name, length(local.evidence_bucket_long) <= 63 ? local.evidence_bucket_long : local.evidence_bucket_short) : var.existing_evidence_bucket
  evidence_bucket_arn   = "arn:${local.partition}:s3:::${local.evidence_bucket_name}"
}

resource "aws_s3_bucket" "evidence" {
  #checkov:skip=CKV_AWS_144:Accepted: no cross-region replication. Each regional deployment keeps its own evidence; replicating locked objects needs a second locked bucket and a replication role per region, which teams that need it add with their own retention.
  #checkov:skip=CKV2_AWS_62:Accepted: no event notifications. The function writes the evidence and names it in the Jira issue; nothing else needs to hear of a write.
  #checkov:skip=CKV2_AWS_61:Accepted: no lifecycle configuration. Object Lock decides how long evidence is kept; expiring it is a decision for people, after the retention ends.
  count               = local.create_evidence_bucket ? 1 : 0
  bucket              = local.evidence_bucket_name
  object_lock_enabled = true
  tags                = local.tags_argument

  lifecycle {
    precondition {
      condition     = length(local.evidence_bucket_name) <= 63
      error_message = "The evidence bucket's name ${local.evidence_bucket_name} is longer than S3's 63 characters: set evidence_bucket_name."
    }
  }
}

resource "aws_s3_bucket_versioning" "evidence" {
  count  = local.create_evidence_bucket ? 1 : 0
  bucket = aws_s3_bucket.evidence[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "evidence" {
  count  = local.create_evidence_bucket ? 1 : 0
  bucket = aws_s3_bucket.evidence[0].id
  rule {
    default_retention {
      mode = var.evidence_lock_mode
      days = var.evidence_retention_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.evidence]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "evidence" {
  count  = local.create_evidence_bucket ? 1 : 0
  bucket = aws_s3_bucket.evidence[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "evidence" {
  count                   = local.create_evidence_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.evidence[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "evidence" {
  count  = local.create_evidence_bucket ? 1 : 0
  bucket = aws_s3_bucket.evidence[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "evidence" {
  count         = local.create_evidence_bucket && var.evidence_access_log_bucket != null ? 1 : 0
  bucket        = aws_s3_bucket.evidence[0].id
  target_bucket = var.evidence_access_log_bucket
  target_prefix = var.evidence_access_log_prefix
}

resource "aws_s3_bucket_policy" "evidence" {
  count  = local.create_evidence_bucket ? 1 : 0
  bucket = aws_s3_bucket.evidence[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "OnlyOverTls"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [local.evidence_bucket_arn, "${local.evidence_bucket_arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        # Governance mode lets a principal allowed s3:BypassGovernanceRetention delete a locked version: no one is,
        # while this statement stands (whoever may change the bucket policy can remove it). Legal holds and longer
        # retentions stay possible: neither deletes anything.
        Sid       = "NeverDeleteEvidence"
        Effect    = "Deny"
        Principal = "*"
        Action    = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"]
        Resource  = "${local.evidence_bucket_arn}/*"
      },
      {
        # An incident's objects are written once: a write that would replace one (a new version of it) is refused.
        Sid       = "OnlyConditionalWrites"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:PutObject"
        Resource  = "${local.evidence_bucket_arn}/incidents/*"
        Condition = { Null = { "s3:if-none-match" = "true" } }
      },
    ]
  })
  depends_on = [aws_s3_bucket_public_access_block.evidence]
}
