"""The mark psp puts on the mail it sends, so that its own intake never takes that mail for a client's.

Renewal notices and statements go to clients with staff in copy; a copy that lands in a polled
support mailbox must be stored as noise, never proposed for billing. The sender (`notify.mailer`)
and the judge (`ingest.noise`) read the header name from here.
"""

NOTICE_HEADER = "X-PSP-Notice"
