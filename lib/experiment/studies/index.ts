/** Built-in studies register themselves on import; add a line here for each new study module. */
import './steer-norm';
import './steering';
import './monitoring';
import './shift';
import './mitigation';
import './screening';
import './paper';
