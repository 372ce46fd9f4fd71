"""What the screens draw, without Textual: number formats, the whole-run series, timelines."""
