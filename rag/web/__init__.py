"""The Gradio web chat: page layout and handlers, rendering, uploads, feedback, static assets."""
