"""What a person runs on their own machine, never deployed: the command line, the demo, an embedded
AWS (moto), the Jira stand-in, terminal display, and the gathering of the IAM actions the core declares.

It builds on the deployed core, `guardduty_responder`; the core never imports anything from here.
"""
