"""The file channel: every publication as files in `<output>/publish/` — what a dry run would have sent,
and in a real run the copy of what was sent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.publish.delivery import DeliveryResult, Message
from core.report import write_atomic


@dataclass(frozen=True, slots=True)
class FileChannel:
    """Writes `<out_dir>/publish/<kind>_<stamp>.<format>` and each attachment as `<name>_<stamp>.<ext>`."""

    out_dir: Path
    stamp: str
    name: str = "files"
    idempotent: bool = True

    def paths(self, message: Message) -> list[Path]:
        """The files a message is written to: its body first, then its attachments."""
        folder = self.out_dir / "publish"
        body = folder / f"{message.kind}_{self.stamp}.{message.format}"
        return [body] + [
            folder / f"{Path(a.filename).stem}_{self.stamp}{Path(a.filename).suffix}"
            for a in message.attachments
        ]

    def send(self, message: Message) -> DeliveryResult:
        paths = self.paths(message)
        try:
            write_atomic(paths[0], message.body)
            for path, attachment in zip(paths[1:], message.attachments, strict=True):
                write_atomic(path, attachment.content)
        except OSError as error:
            return DeliveryResult(delivered=False, error=f"{paths[0].parent}: {error.strerror or error}")
        return DeliveryResult(delivered=True, location=", ".join(map(str, paths)))
