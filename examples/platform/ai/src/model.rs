//! The "model": a deterministic stand-in for a language model, so that answers can be
//! tested while the accounting around them is real.

/// The answer to `prompt`: how many words it has, and those words in reverse order.
pub fn answer(prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    let plural = if words.len() == 1 { "" } else { "s" };
    let backwards: Vec<&str> = words.iter().rev().copied().collect();
    format!(
        "You wrote {} word{plural}. Backwards: {}",
        words.len(),
        backwards.join(" ")
    )
}
