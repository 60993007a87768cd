"""What a mail domain needs in the DNS: the records (:mod:`.records`), printed in zone-file
form by ``courriel dns DOMAIN``, and checked against live DNS by ``courriel check DOMAIN``
(:mod:`.check`). The MTA-STS policy text lives here too, since its id is a DNS record."""
