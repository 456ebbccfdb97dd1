//! `ebpfx list`: name, source and description of every config.
use crate::catalog::Catalog;
use crate::cli::ListArgs;

use super::Globals;

/// Prints the list.
pub fn run(_args: &ListArgs, globals: &Globals<'_>) -> anyhow::Result<()> {
    crate::output::print(&table(globals)?)
}

fn table(globals: &Globals<'_>) -> anyhow::Result<String> {
    let catalog = Catalog::new(globals.config_dir)?;
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    table.set_header(vec!["NAME", "SOURCE", "DESCRIPTION"]);
    for l in catalog.list() {
        table.add_row(vec![l.name, l.source, l.description]);
    }
    let mut text = table.to_string();
    // comfy-table pads the last column; keep lines clean for grep and diff.
    text = text.lines().map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end()).collect::<Vec<_>>().join("\n");
    text.push('\n');
    Ok(text)
}
