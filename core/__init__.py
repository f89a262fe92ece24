"""ai-log-analyzer: fetch → normalize → fingerprint → classify → detect → propagate → persist → report
→ publish. `core.pipeline` wires the stages; `core.cli` is the command line."""
