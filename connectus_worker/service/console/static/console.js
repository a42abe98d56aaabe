// Asks before a form marked data-confirm is sent (the button's own mark wins).
// A file, not inline code: the Content-Security-Policy allows scripts of the console only.
document.addEventListener("submit", (event) => {
  const text = (event.submitter && event.submitter.dataset.confirm) || event.target.dataset.confirm;
  if (text && !window.confirm(text)) event.preventDefault();
});
