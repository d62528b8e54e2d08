"""What the core calls beyond its own table, queues and bus: export files on S3 (`files`), HTTP to
customers' URLs with its SSRF checks (`outbound`), webhook secrets under KMS (`webhook_secrets`),
API Gateway usage plans (`plans`, for segments-admin). Mailchimp has its own package (`mailchimp/`)."""
