//! The one renderer of `nabla explain`'s text and markdown. The views ([`super::tiny`],
//! [`super::model`]) say *what* to show — a title, summary lines, headings, blocks of
//! equations, tables, paragraphs — and [`Doc`] decides how each [`Markup`] writes it; no view
//! branches on the format.
//!
//! Blocks are separated by one blank line. Markdown keeps every block apart, as its syntax
//! needs; plain text lets a heading's underline, a table's caption and its note sit right
//! against the block they belong to. A block whose content already ends with a blank line
//! (the model's backward pass leaves one after each layer) gets no second one.

/// How [`Doc`] writes: for the terminal or as markdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Markup {
    /// Plain text: underlined headings, equations as they are, space-aligned tables.
    Text,
    /// Markdown: `#` headings, equations in ```` ```text ```` fences, pipe tables.
    Markdown,
}

/// One column of a [`Table`]: its title and its width in plain text (characters; the last
/// column is never padded).
#[derive(Clone, Copy, Debug)]
pub(super) struct Column {
    /// The header cell.
    pub title: &'static str,
    /// Plain-text width: cells are padded with spaces to this many characters.
    pub width: usize,
}

/// A table: rows of cells under [`Column`]s, with an optional line before it (`caption`) and
/// after it (`note`) that belong to it.
#[derive(Debug, Default)]
pub(super) struct Table {
    /// The columns, left to right.
    pub columns: &'static [Column],
    /// The rows: one cell per column.
    pub rows: Vec<Vec<String>>,
    /// A line introducing the table.
    pub caption: Option<String>,
    /// A line commenting on the table, after it.
    pub note: Option<String>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &'static [Column]) -> Self {
        Self {
            columns,
            ..Self::default()
        }
    }
}

/// A document being written: blocks in order, in one [`Markup`].
#[derive(Debug)]
pub(super) struct Doc {
    markup: Markup,
    out: String,
    /// A blank line is due before the next block.
    separate: bool,
}

impl Doc {
    /// An empty document.
    pub fn new(markup: Markup) -> Self {
        Self {
            markup,
            out: String::new(),
            separate: false,
        }
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }

    /// Starts a block: the blank line that separates it from the previous one, if due.
    fn block(&mut self) {
        if self.separate {
            self.out.push('\n');
        }
        self.separate = false;
    }

    fn line(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }

    /// The document's title: `# heading` in markdown; in text, the `banner` a terminal shows.
    pub fn title(&mut self, heading: &str, banner: &str) {
        self.block();
        match self.markup {
            Markup::Text => self.line(banner),
            Markup::Markdown => self.line(&format!("# {heading}")),
        }
        self.separate = true;
    }

    /// Lines that each stand alone (`Model: …`, `Sample: …`): one under the other in text, one
    /// paragraph each in markdown.
    pub fn lines(&mut self, lines: &[String]) {
        for line in lines {
            self.block();
            self.line(line);
            self.separate = self.markup == Markup::Markdown;
        }
        self.separate = true;
    }

    /// A section heading: `## title` in markdown, the title underlined in text.
    pub fn heading(&mut self, title: &str) {
        self.block();
        match self.markup {
            Markup::Text => {
                self.line(title);
                self.line(&"─".repeat(title.chars().count()));
            }
            Markup::Markdown => {
                self.line(&format!("## {title}"));
                self.separate = true;
            }
        }
    }

    /// Equations and other preformatted lines, kept as they are (an empty string is a blank
    /// line): fenced as ```` ```text ```` in markdown.
    pub fn equations(&mut self, lines: &[String]) {
        self.block();
        let fenced = self.markup == Markup::Markdown;
        if fenced {
            self.line("```text");
        }
        for line in lines {
            self.line(line);
        }
        if fenced {
            self.line("```");
        }
        self.separate = lines.last().is_none_or(|l| !l.is_empty());
    }

    /// A table: space-aligned columns in text, a pipe table in markdown.
    pub fn table(&mut self, table: &Table) {
        self.block();
        let md = self.markup == Markup::Markdown;
        if let Some(caption) = &table.caption {
            self.line(caption);
            if md {
                self.out.push('\n');
            }
        }
        let titles: Vec<String> = table.columns.iter().map(|c| c.title.to_string()).collect();
        self.row(table.columns, &titles);
        if md {
            self.line(&format!("|{}", "---|".repeat(table.columns.len())));
        }
        for row in &table.rows {
            self.row(table.columns, row);
        }
        if let Some(note) = &table.note {
            if md {
                self.out.push('\n');
            }
            self.line(note);
        }
        self.separate = true;
    }

    /// One row of a table: `| a | b |` in markdown; in text, each cell but the last padded to
    /// its column's width.
    fn row(&mut self, columns: &[Column], cells: &[String]) {
        let line = match self.markup {
            Markup::Markdown => format!("| {} |", cells.join(" | ")),
            Markup::Text => {
                let last = cells.len().saturating_sub(1);
                let padded: Vec<String> = cells
                    .iter()
                    .zip(columns)
                    .enumerate()
                    .map(|(i, (cell, c))| {
                        if i == last {
                            cell.clone()
                        } else {
                            format!("{cell:<w$}", w = c.width)
                        }
                    })
                    .collect();
                padded.join(" ")
            }
        };
        self.line(&line);
    }

    /// A paragraph of prose.
    pub fn paragraph(&mut self, text: &str) {
        self.block();
        self.line(text);
        self.separate = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 3] = [
        Column {
            title: "name",
            width: 6,
        },
        Column {
            title: "∂L/∂w",
            width: 8,
        },
        Column {
            title: "check",
            width: 0,
        },
    ];

    fn sample(markup: Markup) -> String {
        let mut doc = Doc::new(markup);
        doc.title("Backprop", "nabla explain — backprop");
        doc.lines(&["Model: m".into(), "Sample: s".into()]);
        doc.heading("1. Forward");
        doc.equations(&["z = 1".into(), "h = 2".into()]);
        let mut table = Table::new(&COLUMNS);
        table
            .rows
            .push(vec!["w1".into(), "0.5".into(), "ok".into()]);
        doc.table(&table);
        doc.heading("2. Backward");
        doc.equations(&["∂L/∂z = 3".into(), String::new()]);
        table.caption = Some("Checked:".into());
        table.note = Some("(approximate)".into());
        doc.table(&table);
        doc.paragraph("Done.");
        doc.finish()
    }

    #[test]
    fn text_underlines_headings_and_aligns_tables() {
        assert_eq!(
            sample(Markup::Text),
            "nabla explain — backprop\n\nModel: m\nSample: s\n\n1. Forward\n──────────\n\
             z = 1\nh = 2\n\nname   ∂L/∂w    check\nw1     0.5      ok\n\n\
             2. Backward\n───────────\n∂L/∂z = 3\n\n\
             Checked:\nname   ∂L/∂w    check\nw1     0.5      ok\n(approximate)\n\nDone.\n"
        );
    }

    #[test]
    fn markdown_keeps_every_block_apart() {
        assert_eq!(
            sample(Markup::Markdown),
            "# Backprop\n\nModel: m\n\nSample: s\n\n## 1. Forward\n\n\
             ```text\nz = 1\nh = 2\n```\n\n| name | ∂L/∂w | check |\n|---|---|---|\n| w1 | 0.5 | ok |\n\n\
             ## 2. Backward\n\n```text\n∂L/∂z = 3\n\n```\n\
             Checked:\n\n| name | ∂L/∂w | check |\n|---|---|---|\n| w1 | 0.5 | ok |\n\n(approximate)\n\nDone.\n"
        );
    }
}
