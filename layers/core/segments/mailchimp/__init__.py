"""Mailchimp, the one outbound audience: its Marketing API over plain HTTP (`client`), each org's
credentials in Secrets Manager (`credentials`), and person-record fields as merge fields (`fields`)."""
