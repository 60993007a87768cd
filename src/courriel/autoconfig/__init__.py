"""Client autoconfiguration: a user types an address and a password, the client finds the
servers. Thunderbird's autoconfig XML, Outlook's autodiscover (POX) XML and an Apple
configuration profile (:mod:`.documents`), served on the http listener (:mod:`.http`) together
with the MTA-STS policy file (RFC 8461 §3.2)."""
