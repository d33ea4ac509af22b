//! Elastic tab stops with the column rules of Go's `text/tabwriter`, which
//! containerd's ctr uses for its tables; matching those rules byte for byte
//! is what makes our tables line up exactly like the real ones.
//!
//! Text is split into cells: a cell ends at a tab (it then belongs to a
//! column) or at the end of a line (the trailing cell is never aligned).
//! Adjacent lines that all have a cell in column `k` form a block, and that
//! block's column is as wide as its widest cell plus `padding`, but at least
//! `min_width`. A line with no tab at all ends every block above it.

/// One cell of buffered text: its width in characters and its text.
#[derive(Debug, Clone, Default)]
struct Cell {
    text: String,
}

impl Cell {
    fn width(&self) -> usize {
        self.text.chars().count()
    }
}

/// Aligns tab-separated text into columns; see the module documentation.
#[derive(Debug)]
pub struct TabWriter {
    min_width: usize,
    tab_width: usize,
    padding: usize,
    pad_char: char,
    /// Finished lines, oldest first; the line being written is `current`.
    lines: Vec<Vec<Cell>>,
    current: Vec<Cell>,
    cell: String,
    out: String,
}

impl TabWriter {
    /// Same parameters, in the same order, as Go's `tabwriter.NewWriter`
    /// (flags are always 0: left-aligned, empty columns kept).
    pub fn new(min_width: usize, tab_width: usize, padding: usize, pad_char: char) -> Self {
        Self {
            min_width,
            tab_width,
            padding,
            pad_char,
            lines: Vec::new(),
            current: Vec::new(),
            cell: String::new(),
            out: String::new(),
        }
    }

    /// Buffers `text`; tabs end cells, newlines end lines.
    pub fn write_str(&mut self, text: &str) {
        for ch in text.chars() {
            match ch {
                '\t' => self.end_cell(),
                '\n' => {
                    self.end_cell();
                    let cells = std::mem::take(&mut self.current);
                    let single_cell = cells.len() == 1;
                    self.lines.push(cells);
                    // A line without tabs cannot influence the columns of later
                    // lines, so everything up to it can be laid out now.
                    if single_cell {
                        self.flush_lines(false);
                    }
                }
                _ => self.cell.push(ch),
            }
        }
    }

    /// Lays out everything still buffered and returns all formatted text.
    pub fn finish(mut self) -> String {
        if !self.cell.is_empty() {
            self.end_cell();
        }
        // Text after the last newline is laid out too, without a line break.
        let partial = std::mem::take(&mut self.current);
        let has_partial = !partial.is_empty();
        if has_partial {
            self.lines.push(partial);
        }
        self.flush_lines(has_partial);
        self.out
    }

    fn end_cell(&mut self) {
        let text = std::mem::take(&mut self.cell);
        self.current.push(Cell { text });
    }

    /// Formats and emits every buffered line, then forgets them; the last one
    /// gets no line break when `last_is_partial`.
    fn flush_lines(&mut self, last_is_partial: bool) {
        let lines = std::mem::take(&mut self.lines);
        let mut widths = Vec::new();
        self.layout(&lines, &mut widths, 0, lines.len());
        if last_is_partial && self.out.ends_with('\n') {
            self.out.pop();
        }
    }

    /// Emits `lines[start..end]`, whose columns left of `widths.len()` already
    /// have their widths: finds each block of lines that has a cell in the next
    /// column, sizes that column for the block, and recurses to the right.
    fn layout(&mut self, lines: &[Vec<Cell>], widths: &mut Vec<usize>, start: usize, end: usize) {
        let column = widths.len();
        let has_column = |line: &Vec<Cell>| line.len() > column + 1;
        let mut printed = start;
        let mut row = start;
        while row < end {
            if !has_column(&lines[row]) {
                row += 1;
                continue;
            }
            self.emit(lines, widths, printed, row);
            let block_start = row;
            let mut width = self.min_width;
            while row < end && has_column(&lines[row]) {
                width = width.max(lines[row][column].width() + self.padding);
                row += 1;
            }
            widths.push(width);
            self.layout(lines, widths, block_start, row);
            widths.pop();
            printed = row;
        }
        self.emit(lines, widths, printed, end);
    }

    fn emit(&mut self, lines: &[Vec<Cell>], widths: &[usize], start: usize, end: usize) {
        for line in &lines[start..end] {
            for (index, cell) in line.iter().enumerate() {
                self.out.push_str(&cell.text);
                if let Some(&width) = widths.get(index) {
                    self.pad(cell.width(), width);
                }
            }
            self.out.push('\n');
        }
    }

    fn pad(&mut self, text_width: usize, cell_width: usize) {
        if self.pad_char == '\t' {
            if self.tab_width == 0 {
                return;
            }
            // Round the cell up to a tab stop and fill with whole tabs.
            let stop = cell_width.div_ceil(self.tab_width) * self.tab_width;
            let tabs = (stop - text_width).div_ceil(self.tab_width);
            self.out.extend(std::iter::repeat_n('\t', tabs));
        } else {
            let count = cell_width.saturating_sub(text_width);
            self.out.extend(std::iter::repeat_n(self.pad_char, count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TabWriter;

    fn format(min_width: usize, padding: usize, text: &str) -> String {
        let mut writer = TabWriter::new(min_width, 8, padding, ' ');
        writer.write_str(text);
        writer.finish()
    }

    #[test]
    fn pads_every_tab_terminated_cell_including_the_last() {
        // ctr's plugin table: minwidth 4, padding 4, a tab after STATUS.
        let text = "TYPE\tID\tPLATFORMS\tSTATUS\t\n\
                    io.containerd.content.v1\tcontent\t-\tok\t\n\
                    io.containerd.snapshotter.v1\taufs\tlinux/amd64\tskip\t\n";
        let expected = "TYPE                            ID         PLATFORMS      STATUS    \n\
                        io.containerd.content.v1        content    -              ok        \n\
                        io.containerd.snapshotter.v1    aufs       linux/amd64    skip      \n";
        assert_eq!(format(4, 4, text), expected);
    }

    #[test]
    fn empty_columns_take_the_minimum_width() {
        assert_eq!(
            format(4, 4, "TYPE\tID\tPLATFORMS\tSTATUS\t\n"),
            "TYPE    ID    PLATFORMS    STATUS    \n"
        );
        assert_eq!(format(1, 1, "NAME\tLABELS\t\n"), "NAME LABELS \n");
    }

    #[test]
    fn a_line_without_tabs_ends_the_blocks_above_it() {
        let text = "a\tb\t\nlonger-cell\tc\t\nbreak\nx\ty\t\n";
        let expected = "a           b \nlonger-cell c \nbreak\nx y \n";
        assert_eq!(format(1, 1, text), expected);
    }

    #[test]
    fn columns_to_the_right_are_sized_per_block() {
        // The first column spans all lines, the second only the lines that
        // have a third cell; ctr's detailed plugin listing relies on this.
        let text = "Type:\t x\nExports:\t\n\t root \t /r\n\t\t\t\nPlatforms:\t l\n";
        let expected = "Type:          x\n\
                        Exports:      \n               root      /r\n                            \n\
                        Platforms:     l\n";
        assert_eq!(format(4, 4, text), expected);
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        assert_eq!(format(1, 1, "é\tx\t\nab\ty\t\n"), "é  x \nab y \n");
    }

    #[test]
    fn text_after_the_last_newline_is_kept_without_a_newline() {
        assert_eq!(format(1, 1, "a\tb\t\ntail"), "a b \ntail");
        assert_eq!(format(1, 1, "a\tb"), "a b");
    }

    #[test]
    fn tab_padding_rounds_up_to_tab_stops() {
        let mut writer = TabWriter::new(0, 8, 1, '\t');
        writer.write_str("a\tb\t\nlonger-than-8\tc\t\n");
        assert_eq!(writer.finish(), "a\t\tb\t\nlonger-than-8\tc\t\n");
    }
}
