"""target-proxy: a low-latency gateway in front of Adobe Target's edge."""

__version__ = "0.1.0"
