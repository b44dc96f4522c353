"""The web page (`app`: Gradio, the `[app]` extra) and its Hub Space export (`space`). Nothing in the library
imports this package."""
