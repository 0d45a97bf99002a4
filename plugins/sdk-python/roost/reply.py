"""What a command answers: text, code blocks and attachments, in order."""

from __future__ import annotations

from typing import Union


class Reply:
    """A message in parts. A command may return a plain `str` instead; `Reply` is for code
    blocks and attachments:

        return Reply("results:").code("text", table).attachment("log.txt", data)
    """

    def __init__(self, text: str = ""):
        # Each part is ("text", str), ("code", language, code) or ("attachment", name, bytes).
        self.parts: list[tuple] = [("text", text)] if text else []

    def text(self, text: str) -> "Reply":
        self.parts.append(("text", text))
        return self

    def code(self, language: str, code: str) -> "Reply":
        self.parts.append(("code", language, code))
        return self

    def attachment(self, filename: str, data: bytes) -> "Reply":
        self.parts.append(("attachment", filename, bytes(data)))
        return self

    @staticmethod
    def of(value: Union[None, str, "Reply"]) -> "Reply":
        """A command's return value as a Reply: None is an empty reply."""
        if isinstance(value, Reply):
            return value
        if value is None:
            return Reply()
        if isinstance(value, str):
            return Reply(value)
        raise TypeError(f"a command returns str, Reply or None, not {type(value).__name__}")

    def plain_text(self) -> str:
        """Roughly what a chat shows: parts on their own lines, code fenced."""
        lines = []
        for part in self.parts:
            if part[0] == "text":
                lines.append(part[1])
            elif part[0] == "code":
                lines.append(f"```{part[1]}\n{part[2]}\n```")
            else:
                lines.append(f"[attachment {part[1]}, {len(part[2])} bytes]")
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and other.parts == self.parts

    def __repr__(self) -> str:
        return f"Reply({self.parts!r})"
