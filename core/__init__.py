"""ai-log-analyzer: fetch → normalize → fingerprint → classify → detect → propagate → persist → report → publish."""
