"""Protocol adapters (Asterisk FastAGI/AMI, Twilio): they translate, nothing else."""
