// The knowledge page's recording (templates/archive/knowledge.html): a YouTube or Vimeo player
// loads only when its button is pressed, as notes' video links do (items.js enableEmbeds).
import { enableEmbeds } from "./items.js";

const box = document.getElementById("recording");
if (box) enableEmbeds(box);
