"""The web service of a node (issue 6): the JSON API, /metrics and the status page."""
