"""Mail authentication: SPF, DKIM, DMARC checks of incoming mail; DKIM signing; SRS."""
