"""The wire APIs clients call, each a thin adapter from its request and answer shapes to the content
service: the single mbox API (``mbox``), the batch mbox API (``batch``) and the Delivery API (``delivery``)."""
