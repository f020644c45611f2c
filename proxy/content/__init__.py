"""The content a visitor is shown, whichever wire API asked: from its cache, from one upstream call, or from
what is left when upstream fails (``proxy.content.service``)."""
