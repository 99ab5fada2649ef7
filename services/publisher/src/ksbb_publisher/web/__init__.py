"""The public web page: server-rendered Jinja2 templates and local static files."""
