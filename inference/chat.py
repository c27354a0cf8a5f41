"""Chat prompts: the node's documented default chat template and rendering a chat with a tokenizer.

Kept free of torch so the node can render chats without loading a model module.
"""

from __future__ import annotations

from typing import Any

from inference.errors import InferenceError

__all__ = ["CHAT_TEMPLATE", "ChatTemplateRefused", "chat_template_of", "render_chat"]

# The chat template of the demo tokenizer, also the node's documented default for tokenizers without one:
# one `<|role|>` line per message, then `<|assistant|>` for the answer to follow.
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


class ChatTemplateRefused(InferenceError, ValueError):
    """The chat template raised on these messages (e.g. a model's template that refuses a role order)."""


def chat_template_of(tokenizer: Any) -> str:
    """The tokenizer's own chat template, else `CHAT_TEMPLATE`."""
    return getattr(tokenizer, "chat_template", None) or CHAT_TEMPLATE


def render_chat(tokenizer: Any, messages: list[dict[str, str]], template: str | None = None) -> str:
    """The prompt text of a chat: `template` (default: the tokenizer's, else `CHAT_TEMPLATE`) applied to the
    messages, with the generation prompt for the assistant's answer appended."""
    try:
        text = tokenizer.apply_chat_template(messages, chat_template=template or chat_template_of(tokenizer),
                                             tokenize=False, add_generation_prompt=True)
    except Exception as e:  # jinja errors in a model's own template (e.g. it refuses a role order)
        raise ChatTemplateRefused(f"the model's chat template refused these messages: {e}") from e
    return str(text)
