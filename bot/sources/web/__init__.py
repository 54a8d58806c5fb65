"""Pages and feeds on the web: fetching (fetch.py), decoding (charset.py), the validator cache
(validators.py), URLs (urls.py), and reading pages and feeds into articles (page.py, feed.py)."""
