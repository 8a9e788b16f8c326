"""Model cards built from a model's stored measurements (``genderclass card``)."""

from .card import SECTIONS, render_card, render_card_html, write_card

__all__ = ["SECTIONS", "render_card", "render_card_html", "write_card"]
