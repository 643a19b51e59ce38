// A card's sections are written by different commands (npm run card, its --precision-only,
// npm run int8-quality --card): each replaces only its own section and leaves the rest alone.

/** card with the section that starts at `heading` replaced by `section` (or inserted before Samples). */
export function upsertSection(card: string, heading: string, section: string): string {
  const at = card.indexOf(`${heading}\n`);
  const next = at >= 0 ? card.indexOf('\n## ', at + 1) : -1;
  const samples = card.indexOf('## Samples');
  if (at >= 0) return card.slice(0, at) + section + (next >= 0 ? card.slice(next + 1) : '');
  return samples >= 0 ? card.slice(0, samples) + section + card.slice(samples) : `${card.trimEnd()}\n\n${section}`;
}
